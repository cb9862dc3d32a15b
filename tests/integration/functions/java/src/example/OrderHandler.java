package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import greeting.Greeting;

/** RequestHandler<Order, Receipt>: named by its class alone; Greeting comes from lib/greeting.jar. */
public class OrderHandler implements RequestHandler<Order, Receipt> {
    @Override
    public Receipt handleRequest(Order order, Context context) {
        context.getLogger().log("order " + order.getOrderId() + " for " + context.getFunctionName());
        int total = 0;
        for (int q : order.getQuantities()) {
            total += q;
        }
        return new Receipt(order.getOrderId(), total, order.getURL(), context.getAwsRequestId(),
                Greeting.hello(order.getOrderId()));
    }
}
