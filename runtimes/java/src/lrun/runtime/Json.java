package lrun.runtime;

import com.amazonaws.services.lambda.runtime.Client;
import com.amazonaws.services.lambda.runtime.ClientContext;
import com.amazonaws.services.lambda.runtime.CognitoIdentity;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.datatype.jdk8.Jdk8Module;
import com.fasterxml.jackson.datatype.jsr310.JavaTimeModule;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.Type;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;

/** JSON: the functions' POJOs through Jackson set up as AWS's serialization library sets it. */
final class Json {
    private Json() {}

    // aws-lambda-java-serialization's JacksonFactory: standard bean naming (getURL -> "URL"),
    // case-sensitive names, unknown properties ignored, nulls left out of the output, lenient
    // parsing, and its two modules: java.time (JavaTimeModule) and Optional (Jdk8Module), with
    // Jackson's defaults, so an Instant is written as epoch seconds with nanoseconds
    // (1700000000.123456789), a LocalDate as [2024,1,15], an empty Optional as null.
    private static final ObjectMapper POJO = pojoMapper();
    private static final ObjectMapper PLAIN = new ObjectMapper();

    private static ObjectMapper pojoMapper() {
        JsonFactory factory = JsonFactory.builder()
                .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
                .enable(JsonReadFeature.ALLOW_LEADING_ZEROS_FOR_NUMBERS)
                .enable(JsonReadFeature.ALLOW_SINGLE_QUOTES)
                .enable(JsonReadFeature.ALLOW_BACKSLASH_ESCAPING_ANY_CHARACTER)
                .enable(JsonReadFeature.ALLOW_UNESCAPED_CONTROL_CHARS)
                .enable(JsonReadFeature.ALLOW_UNQUOTED_FIELD_NAMES)
                .disable(JsonReadFeature.ALLOW_JAVA_COMMENTS)
                .disable(JsonReadFeature.ALLOW_YAML_COMMENTS)
                .enable(JsonWriteFeature.QUOTE_FIELD_NAMES)
                .enable(JsonWriteFeature.WRITE_NAN_AS_STRINGS)
                .disable(JsonWriteFeature.ESCAPE_NON_ASCII)
                .disable(JsonWriteFeature.WRITE_NUMBERS_AS_STRINGS)
                .build();
        factory.disable(JsonParser.Feature.AUTO_CLOSE_SOURCE);
        factory.disable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
        factory.enable(JsonGenerator.Feature.IGNORE_UNKNOWN);
        factory.disable(JsonGenerator.Feature.AUTO_CLOSE_JSON_CONTENT);
        factory.disable(JsonGenerator.Feature.AUTO_CLOSE_TARGET);
        factory.disable(JsonGenerator.Feature.FLUSH_PASSED_TO_STREAM);
        factory.disable(JsonGenerator.Feature.STRICT_DUPLICATE_DETECTION);
        factory.disable(JsonGenerator.Feature.WRITE_BIGDECIMAL_AS_PLAIN);
        ObjectMapper mapper = JsonMapper.builder(factory)
                .enable(MapperFeature.ALLOW_FINAL_FIELDS_AS_MUTATORS)
                .enable(MapperFeature.AUTO_DETECT_FIELDS)
                .enable(MapperFeature.AUTO_DETECT_GETTERS)
                .enable(MapperFeature.AUTO_DETECT_IS_GETTERS)
                .enable(MapperFeature.AUTO_DETECT_SETTERS)
                .enable(MapperFeature.CAN_OVERRIDE_ACCESS_MODIFIERS)
                .enable(MapperFeature.USE_STD_BEAN_NAMING)
                .enable(MapperFeature.USE_ANNOTATIONS)
                .disable(MapperFeature.ACCEPT_CASE_INSENSITIVE_PROPERTIES)
                .disable(MapperFeature.AUTO_DETECT_CREATORS)
                .disable(MapperFeature.INFER_PROPERTY_MUTATORS)
                .disable(MapperFeature.SORT_PROPERTIES_ALPHABETICALLY)
                .disable(MapperFeature.USE_GETTERS_AS_SETTERS)
                .disable(MapperFeature.USE_WRAPPER_NAME_AS_PROPERTY_NAME)
                .disable(MapperFeature.USE_STATIC_TYPING)
                .disable(MapperFeature.REQUIRE_SETTERS_FOR_GETTERS)
                .enable(SerializationFeature.FAIL_ON_SELF_REFERENCES)
                .enable(SerializationFeature.FAIL_ON_UNWRAPPED_TYPE_IDENTIFIERS)
                .enable(SerializationFeature.WRAP_EXCEPTIONS)
                .disable(SerializationFeature.CLOSE_CLOSEABLE)
                .disable(SerializationFeature.EAGER_SERIALIZER_FETCH)
                .disable(SerializationFeature.FAIL_ON_EMPTY_BEANS)
                .disable(SerializationFeature.FLUSH_AFTER_WRITE_VALUE)
                .disable(SerializationFeature.INDENT_OUTPUT)
                .disable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS)
                .disable(SerializationFeature.USE_EQUALITY_FOR_OBJECT_ID)
                .disable(SerializationFeature.WRITE_CHAR_ARRAYS_AS_JSON_ARRAYS)
                .disable(SerializationFeature.WRAP_ROOT_VALUE)
                .enable(DeserializationFeature.ACCEPT_EMPTY_ARRAY_AS_NULL_OBJECT)
                .enable(DeserializationFeature.ACCEPT_EMPTY_STRING_AS_NULL_OBJECT)
                .enable(DeserializationFeature.ACCEPT_SINGLE_VALUE_AS_ARRAY)
                .enable(DeserializationFeature.FAIL_ON_INVALID_SUBTYPE)
                .enable(DeserializationFeature.FAIL_ON_UNRESOLVED_OBJECT_IDS)
                .enable(DeserializationFeature.READ_UNKNOWN_ENUM_VALUES_AS_NULL)
                .enable(DeserializationFeature.UNWRAP_SINGLE_VALUE_ARRAYS)
                .enable(DeserializationFeature.WRAP_EXCEPTIONS)
                .disable(DeserializationFeature.FAIL_ON_IGNORED_PROPERTIES)
                .disable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
                .disable(DeserializationFeature.FAIL_ON_NUMBERS_FOR_ENUMS)
                .disable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
                .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
                .serializationInclusion(JsonInclude.Include.NON_NULL)
                .addModule(new JavaTimeModule())
                .addModule(new Jdk8Module())
                .build();
        return mapper;
    }

    /** Loads Jackson and the paths of an invocation during init, which runs with more CPU
     * than an invocation of a small function gets (Lambda's, and lrun's, init model). */
    static void warm() {
        error(new IllegalStateException("warm"));
        clientContext("{\"client\":{},\"custom\":{},\"env\":{}}");
        cognitoIdentity("{}");
    }

    /** Reads and writes one handler's input or output type. */
    static final class Serializer {
        private final ObjectReader reader;
        private final ObjectWriter writer;

        Serializer(Type type) {
            var javaType = POJO.constructType(type);
            this.reader = POJO.readerFor(javaType);
            this.writer = POJO.writerFor(javaType);
        }

        Object read(InputStream input) throws IOException {
            return reader.readValue(input);
        }

        void write(Object value, OutputStream output) throws IOException {
            writer.writeValue(output, value);
        }
    }

    static Serializer serializer(Type type) {
        return new Serializer(type);
    }

    /** The body of /error and /init/error: errorMessage, errorType, then stackTrace if any. */
    static String error(String message, String type, String[] stackTrace) {
        ObjectNode body = PLAIN.createObjectNode();
        body.put("errorMessage", message);
        if (type != null) { // a fault without an exception has none, as in AWS's client
            body.put("errorType", type);
        }
        if (stackTrace != null) {
            ArrayNode frames = body.putArray("stackTrace");
            for (String frame : stackTrace) {
                frames.add(frame);
            }
        }
        return body.toString();
    }

    static String error(Throwable t) {
        String message = t.getLocalizedMessage() == null ? t.getClass().getName() : t.getLocalizedMessage();
        StackTraceElement[] trace = t.getStackTrace();
        String[] frames = new String[trace.length];
        for (int i = 0; i < trace.length; i++) {
            frames[i] = trace[i].toString();
        }
        return error(message, t.getClass().getName(), frames);
    }

    private static JsonNode tree(String text) {
        if (text == null || text.isEmpty()) {
            return null;
        }
        try {
            JsonNode node = PLAIN.readTree(text);
            return node != null && node.isObject() ? node : null;
        } catch (IOException e) {
            return null;
        }
    }

    private static String text(JsonNode node, String field) {
        JsonNode value = node == null ? null : node.get(field);
        return value == null || value.isNull() ? null : value.asText();
    }

    private static Map<String, String> strings(JsonNode node) {
        if (node == null || !node.isObject()) {
            return null;
        }
        Map<String, String> map = new HashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext();) {
            Map.Entry<String, JsonNode> e = it.next();
            map.put(e.getKey(), e.getValue().isNull() ? null : e.getValue().asText());
        }
        return map;
    }

    /** Lambda-Runtime-Client-Context: {"client": {...}, "custom": {...}, "env": {...}}. */
    static ClientContext clientContext(String header) {
        JsonNode node = tree(header);
        if (node == null) {
            return null;
        }
        JsonNode c = node.get("client");
        Client client = c == null || !c.isObject() ? null : new Client() {
            public String getInstallationId() {
                return text(c, "installation_id");
            }

            public String getAppTitle() {
                return text(c, "app_title");
            }

            public String getAppVersionName() {
                return text(c, "app_version_name");
            }

            public String getAppVersionCode() {
                return text(c, "app_version_code");
            }

            public String getAppPackageName() {
                return text(c, "app_package_name");
            }
        };
        Map<String, String> custom = strings(node.get("custom"));
        Map<String, String> env = strings(node.get("env"));
        return new ClientContext() {
            public Client getClient() {
                return client;
            }

            public Map<String, String> getCustom() {
                return custom;
            }

            public Map<String, String> getEnvironment() {
                return env;
            }
        };
    }

    /** Lambda-Runtime-Cognito-Identity: {"cognitoIdentityId": ..., "cognitoIdentityPoolId": ...}. */
    static CognitoIdentity cognitoIdentity(String header) {
        JsonNode node = tree(header);
        if (node == null) {
            return null;
        }
        String id = text(node, "cognitoIdentityId");
        String pool = text(node, "cognitoIdentityPoolId");
        return new CognitoIdentity() {
            public String getIdentityId() {
                return id;
            }

            public String getIdentityPoolId() {
                return pool;
            }
        };
    }
}
