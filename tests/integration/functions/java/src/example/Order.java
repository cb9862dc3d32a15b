package example;

import java.util.List;

/** A POJO event: bean properties by Java's standard naming (Jackson, as AWS configures it). */
public class Order {
    private String orderId;
    private List<Integer> quantities;
    private String URL;

    public String getOrderId() {
        return orderId;
    }

    public void setOrderId(String orderId) {
        this.orderId = orderId;
    }

    public List<Integer> getQuantities() {
        return quantities;
    }

    public void setQuantities(List<Integer> quantities) {
        this.quantities = quantities;
    }

    public String getURL() {
        return URL;
    }

    public void setURL(String url) {
        this.URL = url;
    }
}
