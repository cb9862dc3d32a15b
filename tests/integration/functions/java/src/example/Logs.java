package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.LambdaRuntime;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import com.amazonaws.services.lambda.runtime.logging.LogLevel;
import java.util.Map;

/** Logs at several levels through LambdaLogger, and prints, for the log format tests. */
public class Logs implements RequestHandler<Map<String, Object>, String> {
    @Override
    public String handleRequest(Map<String, Object> event, Context context) {
        LambdaLogger logger = context.getLogger();
        logger.log("java debug\n", LogLevel.DEBUG);
        logger.log("java warn\n", LogLevel.WARN);
        logger.log("java no level\n");
        LambdaRuntime.getLogger().log("java error from LambdaRuntime\n", LogLevel.ERROR);
        System.out.println("java stdout");
        System.err.println("java stderr");
        return "ok";
    }
}
