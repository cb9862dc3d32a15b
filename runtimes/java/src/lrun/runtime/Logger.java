package lrun.runtime;

import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.logging.LogFormat;
import com.amazonaws.services.lambda.runtime.logging.LogLevel;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/**
 * The LambdaLogger of Context.getLogger() and LambdaRuntime.getLogger(), as AWS's runtime
 * client writes it (its LambdaContextLogger, TextLogFormatter, JsonLogFormatter and
 * LogFiltering):
 *
 * <ul>
 * <li>Text (AWS_LAMBDA_LOG_FORMAT unset or TEXT): log(message) writes the message as it is, with
 * no newline added; log(message, level) prefixes "[LEVEL] ".</li>
 * <li>JSON: each log(String ...) call is one line
 * {"timestamp":"...Z","message":...,"level":"INFO","AWSRequestId":"..."}; a call without a level
 * has the level UNDEFINED. log(byte[] ...) is written as it is in both formats.</li>
 * <li>AWS_LAMBDA_LOG_LEVEL drops calls below it; a call without a level is never dropped.</li>
 * </ul>
 *
 * System.out and System.err are not touched: what they print goes to the log as it is, in both
 * formats, as on Lambda.
 */
final class Logger implements LambdaLogger {
    private static final DateTimeFormatter STAMP =
            DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);
    private static final byte[] NULL = "null".getBytes(StandardCharsets.UTF_8);

    final LogFormat format;
    private final LogLevel minimum;
    private volatile String requestId;

    Logger(LogFormat format, LogLevel minimum) {
        this.format = format;
        this.minimum = minimum;
    }

    /** The logger the environment asks for; an unknown value is an init error, as in the RIC. */
    static Logger fromEnvironment() {
        String format = System.getenv("AWS_LAMBDA_LOG_FORMAT");
        String level = System.getenv("AWS_LAMBDA_LOG_LEVEL");
        return new Logger(LogFormat.fromString(format == null ? "TEXT" : format),
                LogLevel.fromString(level == null ? "UNDEFINED" : level));
    }

    /** The request whose id JSON records carry (null between invocations). */
    void setRequestId(String requestId) {
        this.requestId = requestId;
    }

    boolean json() {
        return format == LogFormat.JSON;
    }

    private boolean enabled(LogLevel level) {
        return level == LogLevel.UNDEFINED || level.ordinal() >= minimum.ordinal();
    }

    @Override
    public void log(String message) {
        log(message, LogLevel.UNDEFINED);
    }

    @Override
    public void log(byte[] message) {
        log(message, LogLevel.UNDEFINED);
    }

    @Override
    public void log(String message, LogLevel level) {
        if (level == null) {
            level = LogLevel.UNDEFINED;
        }
        if (!enabled(level)) {
            return;
        }
        String text = format == LogFormat.JSON ? record(message, level)
                : level == LogLevel.UNDEFINED ? message : "[" + level + "] " + message;
        write(text == null ? NULL : text.getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public void log(byte[] message, LogLevel level) {
        if (enabled(level == null ? LogLevel.UNDEFINED : level)) {
            write(message == null ? NULL : message); // no formatting for bytes, in either format
        }
    }

    /** What the runtime client itself reports (errors): at ERROR in JSON, as it is in text. */
    void report(String message) {
        log(message, format == LogFormat.JSON ? LogLevel.ERROR : LogLevel.UNDEFINED);
    }

    private static void write(byte[] bytes) {
        PrintStream out = System.out;
        try {
            out.write(bytes);
        } catch (IOException e) {
            e.printStackTrace();
        }
        out.flush();
    }

    /** The RIC's StructuredLogMessage through Gson: fields in this order, nulls left out. */
    private String record(String message, LogLevel level) {
        StringBuilder sb = new StringBuilder(96 + (message == null ? 0 : message.length()));
        sb.append("{\"timestamp\":");
        quote(sb, STAMP.format(java.time.Instant.now()));
        if (message != null) {
            sb.append(",\"message\":");
            quote(sb, message);
        }
        sb.append(",\"level\":");
        quote(sb, level.name());
        String id = requestId;
        if (id != null) {
            sb.append(",\"AWSRequestId\":");
            quote(sb, id);
        }
        return sb.append("}\n").toString();
    }

    /** A JSON string as Gson writes one with HTML escaping off. */
    static void quote(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\f' -> sb.append("\\f");
                case '\u2028' -> sb.append("\\u2028");
                case '\u2029' -> sb.append("\\u2029");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }
}
