package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/** RequestStreamHandler: the event's bytes in, upper-cased, out; the Context's facts logged. */
public class Shout implements RequestStreamHandler {
    @Override
    public void handleRequest(InputStream input, OutputStream output, Context context) throws IOException {
        LambdaLogger logger = context.getLogger();
        logger.log("memory " + context.getMemoryLimitInMB() + " remaining>0 "
                + (context.getRemainingTimeInMillis() > 0) + " arn " + context.getInvokedFunctionArn() + "\n");
        System.out.print("no newline from System.out");
        String text = new String(input.readAllBytes(), StandardCharsets.UTF_8);
        output.write(text.toUpperCase().getBytes(StandardCharsets.UTF_8));
    }
}
