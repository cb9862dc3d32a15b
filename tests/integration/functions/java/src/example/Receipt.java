package example;

/** A POJO response: getters become properties; a null one is left out. */
public class Receipt {
    private final String orderId;
    private final int total;
    private final boolean paid;
    private final String URL;
    private final String note = null;
    private final String requestId;
    private final String greeting;

    public Receipt(String orderId, int total, String url, String requestId, String greeting) {
        this.orderId = orderId;
        this.total = total;
        this.paid = true;
        this.URL = url;
        this.requestId = requestId;
        this.greeting = greeting;
    }

    public String getOrderId() {
        return orderId;
    }

    public int getTotal() {
        return total;
    }

    public boolean isPaid() {
        return paid;
    }

    public String getURL() {
        return URL;
    }

    public String getNote() {
        return note;
    }

    public String getRequestId() {
        return requestId;
    }

    public String getGreeting() {
        return greeting;
    }
}
