package lrun.runtime;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;

/** The Lambda Runtime API (2018-06-01) at $AWS_LAMBDA_RUNTIME_API, over kept-alive HTTP/1.1. */
final class RuntimeApi {
    private final String base;

    RuntimeApi(String address) {
        if (address == null || address.isEmpty()) {
            throw new IllegalStateException("AWS_LAMBDA_RUNTIME_API is not set");
        }
        this.base = "http://" + address + "/2018-06-01/runtime";
    }

    /** One event and what its headers say. */
    static final class Invocation {
        String requestId;
        long deadlineMs;
        String functionArn;
        String traceId;
        String clientContext;
        String cognitoIdentity;
        byte[] body;
    }

    Invocation next() throws IOException {
        HttpURLConnection c = open("/invocation/next", "GET");
        int status = c.getResponseCode();
        byte[] body = read(c, status);
        if (status != 200) {
            throw new IOException("GET /invocation/next answered " + status + ": "
                    + new String(body, StandardCharsets.UTF_8));
        }
        Invocation inv = new Invocation();
        inv.requestId = c.getHeaderField("Lambda-Runtime-Aws-Request-Id");
        String deadline = c.getHeaderField("Lambda-Runtime-Deadline-Ms");
        inv.deadlineMs = deadline == null ? 0 : Long.parseLong(deadline.trim());
        inv.functionArn = c.getHeaderField("Lambda-Runtime-Invoked-Function-Arn");
        inv.traceId = c.getHeaderField("Lambda-Runtime-Trace-Id");
        inv.clientContext = c.getHeaderField("Lambda-Runtime-Client-Context");
        inv.cognitoIdentity = c.getHeaderField("Lambda-Runtime-Cognito-Identity");
        inv.body = body;
        return inv;
    }

    void respond(String requestId, byte[] body) throws IOException {
        post("/invocation/" + encode(requestId) + "/response", body, null);
    }

    void error(String requestId, String body, String errorType) throws IOException {
        post("/invocation/" + encode(requestId) + "/error", body.getBytes(StandardCharsets.UTF_8), errorType);
    }

    void initError(String body, String errorType) throws IOException {
        post("/init/error", body.getBytes(StandardCharsets.UTF_8), errorType);
    }

    private void post(String route, byte[] body, String errorType) throws IOException {
        HttpURLConnection c = open(route, "POST");
        c.setDoOutput(true);
        c.setFixedLengthStreamingMode(body.length);
        c.setRequestProperty("Content-Type", "application/json");
        if (errorType != null) {
            c.setRequestProperty("Lambda-Runtime-Function-Error-Type", errorType);
        }
        try (OutputStream out = c.getOutputStream()) {
            out.write(body);
        }
        int status = c.getResponseCode();
        read(c, status); // read to the end, so that the connection is kept for the next call
    }

    private HttpURLConnection open(String route, String method) throws IOException {
        HttpURLConnection c = (HttpURLConnection) URI.create(base + route).toURL().openConnection();
        c.setRequestMethod(method);
        c.setUseCaches(false);
        c.setConnectTimeout(0);
        c.setReadTimeout(0); // /next waits as long as there is no event
        return c;
    }

    private static byte[] read(HttpURLConnection c, int status) throws IOException {
        InputStream in = status >= 400 ? c.getErrorStream() : c.getInputStream();
        if (in == null) {
            return new byte[0];
        }
        try (in) {
            return in.readAllBytes();
        }
    }

    private static String encode(String requestId) {
        return URLEncoder.encode(requestId, StandardCharsets.UTF_8).replace("+", "%20");
    }
}
