package com.amazonaws.services.lambda.runtime;

import java.nio.charset.StandardCharsets;

/** The runtime's logger, for code that has no Context at hand. */
public final class LambdaRuntime {
    private LambdaRuntime() {}

    // Set by the runtime client before the handler's class is loaded.
    private static volatile LambdaLogger logger = new LambdaLogger() {
        public void log(String message) {
            System.out.print(message);
        }

        public void log(byte[] message) {
            System.out.print(new String(message, StandardCharsets.UTF_8));
        }
    };

    public static LambdaLogger getLogger() {
        return logger;
    }
}
