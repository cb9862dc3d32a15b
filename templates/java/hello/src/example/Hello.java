package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.Map;

/** A hello-world handler: lrun.yaml names it example.Hello::handleRequest. */
public class Hello implements RequestHandler<Map<String, Object>, Map<String, String>> {
    @Override
    public Map<String, String> handleRequest(Map<String, Object> event, Context context) {
        Object name = event == null ? null : event.get("name");
        context.getLogger().log("hello from " + context.getFunctionName() + "\n");
        return Map.of("message", "Hello, " + (name == null ? "world" : name) + "!");
    }
}
