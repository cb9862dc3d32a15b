package lrun.runtime;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The Lambda Runtime API (2018-06-01) at $AWS_LAMBDA_RUNTIME_API, over one kept-alive HTTP/1.1
 * connection written and read here directly. HttpURLConnection cost about a millisecond per
 * invocation more (its connection pool, header maps and stream wrappers, run by C1-compiled
 * code), which a warm invocation of a small function pays in full. A connection the server has
 * closed is opened again, and a request that found it closed before any answer is sent again.
 */
final class RuntimeApi {
    private static final String PREFIX = "/2018-06-01/runtime";

    private final String host;
    private final int port;
    private final String hostHeader;
    private Socket socket;
    private InputStream in;
    private OutputStream out;

    RuntimeApi(String address) {
        if (address == null || address.isEmpty()) {
            throw new IllegalStateException("AWS_LAMBDA_RUNTIME_API is not set");
        }
        int colon = address.lastIndexOf(':');
        this.host = colon < 0 ? address : address.substring(0, colon);
        this.port = colon < 0 ? 80 : Integer.parseInt(address.substring(colon + 1));
        this.hostHeader = address;
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

    /** A response: its status, headers (lower-case names) and body. */
    private record Answer(int status, Map<String, String> headers, byte[] body) {}

    Invocation next() throws IOException {
        Answer a = exchange("GET", PREFIX + "/invocation/next", null, null);
        if (a.status != 200) {
            throw new IOException("GET /invocation/next answered " + a.status + ": "
                    + new String(a.body, StandardCharsets.UTF_8));
        }
        Invocation inv = new Invocation();
        inv.requestId = a.headers.get("lambda-runtime-aws-request-id");
        String deadline = a.headers.get("lambda-runtime-deadline-ms");
        inv.deadlineMs = deadline == null ? 0 : Long.parseLong(deadline.trim());
        inv.functionArn = a.headers.get("lambda-runtime-invoked-function-arn");
        inv.traceId = a.headers.get("lambda-runtime-trace-id");
        inv.clientContext = a.headers.get("lambda-runtime-client-context");
        inv.cognitoIdentity = a.headers.get("lambda-runtime-cognito-identity");
        inv.body = a.body;
        return inv;
    }

    void respond(String requestId, byte[] body) throws IOException {
        exchange("POST", PREFIX + "/invocation/" + encode(requestId) + "/response", body, null);
    }

    void error(String requestId, String body, String errorType) throws IOException {
        exchange("POST", PREFIX + "/invocation/" + encode(requestId) + "/error",
                body.getBytes(StandardCharsets.UTF_8), errorType);
    }

    void initError(String body, String errorType) throws IOException {
        exchange("POST", PREFIX + "/init/error", body.getBytes(StandardCharsets.UTF_8), errorType);
    }

    private Answer exchange(String method, String path, byte[] body, String errorType) throws IOException {
        boolean fresh = socket == null;
        if (fresh) {
            connect();
        }
        try {
            send(method, path, body, errorType);
            return receive();
        } catch (StaleConnection e) {
            if (fresh) {
                throw new IOException("the Runtime API closed the connection before answering", e);
            }
            close(); // kept too long: the server closed it before this request was read
            connect();
            send(method, path, body, errorType);
            return receive();
        }
    }

    private void connect() throws IOException {
        Socket s = new Socket();
        s.setTcpNoDelay(true);
        s.setKeepAlive(true);
        s.connect(new InetSocketAddress(host, port));
        s.setSoTimeout(0); // /next waits as long as there is no event
        socket = s;
        in = new BufferedInputStream(s.getInputStream(), 16 * 1024);
        out = s.getOutputStream();
    }

    private void close() {
        try {
            if (socket != null) {
                socket.close();
            }
        } catch (IOException ignored) {
            // closing a dead connection
        }
        socket = null;
    }

    private void send(String method, String path, byte[] body, String errorType) throws IOException {
        StringBuilder head = new StringBuilder(192)
                .append(method).append(' ').append(path).append(" HTTP/1.1\r\nHost: ").append(hostHeader)
                .append("\r\n");
        if (body != null) {
            head.append("Content-Type: application/json\r\nContent-Length: ").append(body.length).append("\r\n");
            if (errorType != null) {
                head.append("Lambda-Runtime-Function-Error-Type: ").append(errorType).append("\r\n");
            }
        }
        head.append("\r\n");
        byte[] headBytes = head.toString().getBytes(StandardCharsets.UTF_8);
        try {
            if (body == null || body.length > 64 * 1024) {
                out.write(headBytes);
                if (body != null) {
                    out.write(body);
                }
            } else { // one write, so one segment for a small request
                byte[] all = new byte[headBytes.length + body.length];
                System.arraycopy(headBytes, 0, all, 0, headBytes.length);
                System.arraycopy(body, 0, all, headBytes.length, body.length);
                out.write(all);
            }
            out.flush();
        } catch (IOException e) {
            throw new StaleConnection(e);
        }
    }

    private Answer receive() throws IOException {
        String statusLine;
        try {
            statusLine = line(true);
        } catch (EOFException e) {
            throw new StaleConnection(e);
        }
        int space = statusLine.indexOf(' ');
        if (!statusLine.startsWith("HTTP/1.") || space < 0 || statusLine.length() < space + 4) {
            close();
            throw new IOException("the Runtime API answered something other than HTTP: " + statusLine);
        }
        int status = Integer.parseInt(statusLine.substring(space + 1, space + 4));
        Map<String, String> headers = new HashMap<>();
        for (String header = line(false); !header.isEmpty(); header = line(false)) {
            int colon = header.indexOf(':');
            if (colon > 0) {
                headers.put(header.substring(0, colon).trim().toLowerCase(Locale.ROOT), header.substring(colon + 1).trim());
            }
        }
        byte[] body;
        String length = headers.get("content-length");
        if (length != null) {
            body = in.readNBytes(Integer.parseInt(length));
        } else if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
            body = chunked();
        } else {
            body = in.readAllBytes(); // ends with the connection
            close();
        }
        if ("close".equalsIgnoreCase(headers.get("connection"))) {
            close();
        }
        return new Answer(status, headers, body);
    }

    private byte[] chunked() throws IOException {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        while (true) {
            String size = line(false);
            int semicolon = size.indexOf(';');
            int n = Integer.parseInt((semicolon < 0 ? size : size.substring(0, semicolon)).trim(), 16);
            if (n == 0) {
                while (!line(false).isEmpty()) {
                    // trailers: none that matter here
                }
                return body.toByteArray();
            }
            body.write(in.readNBytes(n));
            line(false); // the CRLF after the chunk
        }
    }

    /** One header line, without its CRLF; at the first line, EOF means the peer had closed. */
    private String line(boolean first) throws IOException {
        StringBuilder sb = new StringBuilder(64);
        while (true) {
            int c;
            try {
                c = in.read();
            } catch (IOException e) {
                if (first && sb.length() == 0) {
                    throw new EOFException(e.getMessage());
                }
                throw e;
            }
            if (c < 0) {
                close();
                throw new EOFException("the Runtime API closed the connection");
            }
            if (c == '\n') {
                int end = sb.length();
                if (end > 0 && sb.charAt(end - 1) == '\r') {
                    sb.setLength(end - 1);
                }
                return sb.toString();
            }
            sb.append((char) c);
        }
    }

    private static String encode(String requestId) {
        return URLEncoder.encode(requestId, StandardCharsets.UTF_8).replace("+", "%20");
    }

    /** The connection was found closed before the request got an answer. */
    private static final class StaleConnection extends IOException {
        private static final long serialVersionUID = 1L;

        StaleConnection(IOException cause) {
            super(cause);
        }
    }
}
