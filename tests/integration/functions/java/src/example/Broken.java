package example;

import com.amazonaws.services.lambda.runtime.Context;

/** Init failures: a static initializer that throws, and a constructor that throws. */
public class Broken {
    public static class Static {
        static {
            if (true) {
                throw new IllegalStateException("static init says no");
            }
        }

        public String handleRequest(Object event, Context context) {
            return "unreachable";
        }
    }

    public static class Constructor {
        public Constructor() {
            throw new IllegalArgumentException("constructor says no");
        }

        public String handleRequest(Object event, Context context) {
            return "unreachable";
        }
    }

    /** Reports the JVM's view of JAVA_TOOL_OPTIONS and its heap limit. */
    public static class Jvm {
        public java.util.Map<String, Object> handleRequest(Object event) {
            return java.util.Map.of("property", String.valueOf(System.getProperty("lrun.test")),
                    "maxHeapMb", Runtime.getRuntime().maxMemory() / (1024 * 1024),
                    "javaVersion", System.getProperty("java.specification.version"));
        }
    }
}
