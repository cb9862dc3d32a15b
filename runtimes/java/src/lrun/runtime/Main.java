package lrun.runtime;

import com.amazonaws.services.lambda.runtime.ClientContext;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.LambdaRuntime;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOError;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Type;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * lrun's Java runtime interface client: a small stand-in for AWS's
 * aws-lambda-java-runtime-interface-client (the "RIC") behind Lambda's java21 runtime. It
 * talks to the Runtime API at $AWS_LAMBDA_RUNTIME_API and copies what a function can observe
 * of the RIC: how _HANDLER is resolved (package.Class::method, or a class implementing
 * RequestHandler or RequestStreamHandler), the class path (the task root, its lib/*.jar, then
 * /opt/java/lib/*.jar), POJO (de)serialization through Jackson configured as AWS's, the error
 * bodies (errorMessage, errorType, stackTrace) and the log lines of errors, and which loading
 * failures are init errors (the class's static initializer or constructor threw) and which
 * are reported at each invocation (class or method not found), as the RIC does.
 *
 * Exit codes: 1 after an init error (posted to /init/error), or after a VirtualMachineError
 * (such as OutOfMemoryError) in a handler, whose invocation error is posted first; 2 when the
 * Runtime API itself failed.
 */
public final class Main {
    private static final String PACKAGE_PREFIX = Main.class.getPackageName();
    private static final byte[] JSON_NULL = "null".getBytes(StandardCharsets.US_ASCII);

    private Main() {}

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("--archive")) {
            archiveRun();
            return;
        }
        // Output is written unbuffered: lrun gives an invocation exactly what its runtime wrote
        // before posting the answer or asking for the next event (orchestrator/sandbox/pipe.py),
        // so nothing may wait in a buffer of the JVM by then.
        System.setOut(new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8));
        RuntimeApi api = new RuntimeApi(System.getenv("AWS_LAMBDA_RUNTIME_API"));
        Logger logger = Logger.fromEnvironment();
        setRuntimeLogger(logger);

        String handlerName = System.getenv("_HANDLER") == null ? "" : System.getenv("_HANDLER");
        String taskRoot = System.getenv("LAMBDA_TASK_ROOT") == null ? System.getProperty("user.dir")
                : System.getenv("LAMBDA_TASK_ROOT");
        ClassLoader loader = customerClassLoader(taskRoot, "/opt/java");
        Thread.currentThread().setContextClassLoader(loader);

        Invoker invoker;
        try {
            invoker = Loader.load(handlerName, loader);
        } catch (Fault fault) { // fatal: an init error, as the RIC reports it
            logger.report(fault.reportable());
            flush();
            api.initError(fault.body(), "Runtime.BadFunctionCode");
            System.exit(1);
            return;
        }

        Json.warm();
        new LambdaContext(new RuntimeApi.Invocation(), logger).getRemainingTimeInMillis();
        while (true) {
            RuntimeApi.Invocation next = api.next();
            if (next.traceId != null) {
                System.setProperty("com.amazonaws.xray.traceHeader", next.traceId);
            } else {
                System.clearProperty("com.amazonaws.xray.traceHeader");
            }
            logger.setRequestId(next.requestId);
            boolean exit = false;
            try {
                ByteArrayOutputStream out = invoker.call(next, logger);
                flush();
                api.respond(next.requestId, out.toByteArray());
                Thread.interrupted(); // clear what the user's code may have set
            } catch (Fault fault) {
                exit = fault.fatal;
                logger.report(fault.reportable());
                flush();
                api.error(next.requestId, fault.body(), "Runtime.BadFunctionCode");
            } catch (Throwable t) {
                exit = t instanceof VirtualMachineError || t instanceof IOError;
                filter(t);
                logger.report(Fault.of(t, false).reportable());
                flush();
                api.error(next.requestId, Json.error(t), "Runtime.UserException");
            }
            if (exit) {
                System.exit(1);
            }
        }
    }

    /** What every start loads, run once at image build with -XX:ArchiveClassesAtExit: the JVM
     * then maps these classes from the archive instead of loading them at each cold start. */
    private static void archiveRun() throws Exception {
        Logger archived = new Logger(com.amazonaws.services.lambda.runtime.logging.LogFormat.JSON,
                com.amazonaws.services.lambda.runtime.logging.LogLevel.FATAL);
        setRuntimeLogger(archived);
        archived.log("", com.amazonaws.services.lambda.runtime.logging.LogLevel.FATAL); // the JSON path
        Json.warm();
        Json.serializer(java.util.Map.class).read(new ByteArrayInputStream("{}".getBytes(StandardCharsets.UTF_8)));
        java.util.Map<String, Object> dated = new java.util.HashMap<>(); // the java.time and Optional modules
        dated.put("i", java.time.Instant.EPOCH);
        dated.put("d", java.time.LocalDate.EPOCH);
        dated.put("o", java.util.Optional.empty());
        Json.serializer(java.util.Map.class).write(dated, new ByteArrayOutputStream());
        ClassLoader loader = customerClassLoader("/nonexistent", "/nonexistent");
        Loader.load("lrun.runtime.Main::flush", loader);
        new LambdaContext(new RuntimeApi.Invocation(), archived).getRemainingTimeInMillis();
        try {
            new RuntimeApi("127.0.0.1:9").next(); // nothing listens: loads the HTTP client
        } catch (java.io.IOException expected) {
            // as intended
        }
    }

    static void flush() {
        System.out.flush();
        System.err.flush();
    }

    private static void setRuntimeLogger(LambdaLogger logger) throws Exception {
        java.lang.reflect.Field field = LambdaRuntime.class.getDeclaredField("logger");
        field.setAccessible(true);
        field.set(null, logger);
    }

    /** The task root, its lib/*.jar (sorted), then the layers' /opt/java/lib/*.jar, as the RIC. */
    static ClassLoader customerClassLoader(String taskRoot, String libRoot) throws Exception {
        List<URL> urls = new ArrayList<>();
        urls.add(new File(taskRoot).toURI().toURL());
        for (File dir : new File[] {new File(taskRoot, "lib"), new File(libRoot, "lib")}) {
            File[] jars = dir.listFiles((d, name) -> name.endsWith(".jar"));
            if (jars != null) {
                Arrays.sort(jars);
                for (File jar : jars) {
                    urls.add(jar.toURI().toURL());
                }
            }
        }
        // The system class loader is the parent: the Context and handler interfaces, and
        // Jackson, are the runtime's, whatever copies the function's own jars carry.
        return new URLClassLoader(urls.toArray(new URL[0]), ClassLoader.getSystemClassLoader());
    }

    /** Drops this client's own frames and what called them, as the RIC's filterStackTrace. */
    static <T extends Throwable> T filter(T t) {
        java.util.Set<Throwable> seen = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        filter(t, seen);
        return t;
    }

    private static void filter(Throwable t, java.util.Set<Throwable> seen) {
        if (t == null || !seen.add(t)) {
            return;
        }
        StackTraceElement[] trace = t.getStackTrace();
        for (int i = 0; i < trace.length; i++) {
            if (trace[i].getClassName().startsWith(PACKAGE_PREFIX)) {
                t.setStackTrace(Arrays.copyOf(trace, i));
                break;
            }
        }
        filter(t.getCause(), seen);
        for (Throwable s : t.getSuppressed()) {
            filter(s, seen);
        }
    }

    static String trace(Throwable t) {
        filter(t);
        StringWriter sw = new StringWriter();
        t.printStackTrace(new PrintWriter(sw));
        return sw.toString();
    }

    /** A failure of the function's code as the RIC's UserFault: reported without a stack trace. */
    static final class Fault extends RuntimeException {
        private static final long serialVersionUID = 1L;
        final String msg;
        final String exception;
        final String stack;
        final boolean fatal;

        Fault(String msg, String exception, String stack, boolean fatal) {
            super(msg, null, false, false);
            this.msg = msg;
            this.exception = exception;
            this.stack = stack;
            this.fatal = fatal;
        }

        static Fault of(String msg) {
            return new Fault(msg, null, null, false);
        }

        static Fault of(Throwable t, boolean fatal) {
            String msg = t.getLocalizedMessage() == null ? t.getClass().getName() : t.getLocalizedMessage();
            return new Fault(msg, t.getClass().getName(), trace(t), fatal);
        }

        /** What the RIC logs of it: "message: type\ntrace\n", or the message alone. */
        String reportable() {
            if (exception != null || stack != null) {
                return String.format("%s: %s\n%s\n", msg, exception == null ? "" : exception, stack == null ? "" : stack);
            }
            return msg + "\n";
        }

        String body() {
            return Json.error(msg, exception, null);
        }
    }

    /** One loaded handler: turns an invocation into the response's bytes. */
    interface Invoker {
        ByteArrayOutputStream call(RuntimeApi.Invocation invocation, Logger logger) throws Exception;
    }

    /** Finding and wrapping the handler, as the RIC's AWSLambda and EventHandlerLoader. */
    static final class Loader {
        private Loader() {}

        static Invoker load(String handler, ClassLoader loader) {
            int colon = handler.lastIndexOf("::");
            String className = colon < 0 ? handler : handler.substring(0, colon);
            String methodName = colon < 0 ? null : handler.substring(colon + 2);
            if (className.isEmpty() || (methodName != null && methodName.isEmpty())) {
                return failing(Fault.of("Invalid handler: `" + handler + "'"));
            }
            Class<?> cls;
            try {
                cls = Class.forName(className, true, loader);
            } catch (ClassNotFoundException e) {
                return failing(new Fault("Class not found: " + className, e.getClass().getName(), trace(e), false));
            } catch (NoClassDefFoundError e) {
                return failing(initError(e, className));
            } catch (Throwable t) {
                throw initError(t, className);
            }
            Invoker invoker = methodName == null ? loadClass(cls) : loadMethod(cls, methodName);
            if (invoker instanceof Failing failing && failing.fault.fatal) {
                throw failing.fault;
            }
            return invoker;
        }

        private static Fault initError(Throwable e, String className) {
            String msg = "Error loading class " + className + (e.getMessage() == null ? "" : ": " + e.getMessage());
            return new Fault(msg, e.getClass().getName(), trace(e), true);
        }

        record Failing(Fault fault) implements Invoker {
            public ByteArrayOutputStream call(RuntimeApi.Invocation invocation, Logger logger) {
                throw fault;
            }
        }

        static Invoker failing(Fault fault) {
            return new Failing(fault);
        }

        private static Invoker loadClass(Class<?> cls) {
            try {
                if (RequestStreamHandler.class.isAssignableFrom(cls)) {
                    RequestStreamHandler h = (RequestStreamHandler) newInstance(constructor(cls));
                    return stream(h::handleRequest);
                }
                if (RequestHandler.class.isAssignableFrom(cls)) {
                    Type[] types = Generics.find(cls, RequestHandler.class);
                    if (types == null) {
                        return failing(Fault.of("Class " + cls.getName()
                                + " does not implement RequestHandler with concrete type parameters"));
                    }
                    for (Type t : types) {
                        if (t instanceof java.lang.reflect.TypeVariable<?> v
                                && Arrays.stream(v.getBounds()).allMatch(Object.class::equals)) {
                            return failing(Fault.of("Class " + cls.getName()
                                    + " does not implement RequestHandler with concrete type parameters: parameter "
                                    + t + " has no upper bound."));
                        }
                    }
                    @SuppressWarnings("unchecked")
                    RequestHandler<Object, Object> h = (RequestHandler<Object, Object>) newInstance(constructor(cls));
                    return pojo(types[0], types[1], h::handleRequest);
                }
                return failing(Fault.of("Class does not implement an appropriate handler interface: " + cls.getName()));
            } catch (Fault f) {
                return failing(f);
            } catch (Throwable t) {
                return failing(Fault.of(t, false));
            }
        }

        /** Longer signatures first; of equal length, the one ending with a Context first. */
        private static final Comparator<Method> PRIORITY = Comparator
                .comparingInt((Method m) -> -m.getParameterCount())
                .thenComparingInt(m -> {
                    Class<?>[] p = m.getParameterTypes();
                    return p.length > 0 && p[p.length - 1] == Context.class ? 0 : 1;
                });

        private static Invoker loadMethod(Class<?> cls, String name) {
            Method[] methods;
            try {
                methods = cls.getMethods();
            } catch (NoClassDefFoundError e) {
                return failing(new Fault("Error loading method " + name + " on class " + cls.getName(),
                        e.getClass().getName(), trace(e), false));
            }
            Method[] named = Arrays.stream(methods).filter(m -> m.getName().equals(name)).sorted(PRIORITY)
                    .toArray(Method[]::new);
            for (Method m : named) {
                Invoker invoker = overload(cls, m);
                if (invoker != null) {
                    return invoker;
                }
            }
            return failing(Fault.of("No public method named " + name
                    + " with appropriate method signature found on class " + cls.getName()));
        }

        /** The RIC's accepted signatures; null (and a line on stderr) for any other. */
        private static Invoker overload(Class<?> cls, Method m) {
            Type[] p = m.getGenericParameterTypes();
            Type r = m.getGenericReturnType();
            boolean in0 = p.length > 0 && p[0] == InputStream.class;
            boolean out0 = p.length > 0 && p[0] == OutputStream.class;
            boolean ctx0 = p.length > 0 && p[0] == Context.class;
            switch (p.length) {
                case 0:
                    return method(cls, m, null, r, false, false, false);
                case 1:
                    if (in0) return method(cls, m, null, null, true, false, false);
                    if (out0) return method(cls, m, null, null, false, true, false);
                    if (ctx0) return method(cls, m, null, r, false, false, true);
                    return method(cls, m, p[0], r, false, false, false);
                case 2:
                    if (out0) {
                        if (p[1] == Context.class) return method(cls, m, null, null, false, true, true);
                        System.err.println("Ignoring two-argument overload because first argument type is "
                                + "OutputStream and second argument type is not Context");
                        return null;
                    }
                    if (ctx0) {
                        System.err.println("Ignoring two-argument overload because first argument type is Context");
                        return null;
                    }
                    if (in0) {
                        if (p[1] == OutputStream.class) return method(cls, m, null, null, true, true, false);
                        if (p[1] == Context.class) return method(cls, m, null, null, true, false, true);
                        System.err.println("Ignoring two-argument overload because second parameter type, "
                                + Generics.raw(p[1]).getName() + ", is not OutputStream.");
                        return null;
                    }
                    if (p[1] == Context.class) return method(cls, m, p[0], r, false, false, true);
                    System.err.println("Ignoring two-argument overload because second parameter type is not Context");
                    return null;
                case 3:
                    if (in0 && p[1] == OutputStream.class && p[2] == Context.class) {
                        return method(cls, m, null, null, true, true, true);
                    }
                    System.err.println("Ignoring three-argument overload because argument signature is not "
                            + "(InputStream, OutputStream, Context");
                    return null;
                default:
                    System.err.println("Ignoring an overload of method " + m.getName()
                            + " because it has too many parameters: Expected at most 3, got " + p.length);
                    return null;
            }
        }

        /** A handler method: a POJO one (pType/rType), or a stream one (in/out flags). */
        private static Invoker method(Class<?> cls, Method m, Type pType, Type rType, boolean in, boolean out,
                boolean ctx) {
            try {
                boolean streams = in || out;
                if (streams && !isVoid(m.getReturnType())) {
                    System.err.println("Will ignore return type " + m.getReturnType() + " on byte stream handler");
                }
                Object instance = Modifier.isStatic(m.getModifiers()) ? null : newInstance(constructor(cls));
                if (streams) {
                    return stream((input, output, context) -> {
                        List<Object> args = new ArrayList<>(3);
                        if (in) args.add(input);
                        if (out) args.add(output);
                        if (ctx) args.add(context);
                        invoke(m, instance, args.toArray());
                        if (!out) output.write(JSON_NULL);
                    });
                }
                boolean takesInput = pType != null;
                return pojo(pType, rType, (input, context) -> {
                    List<Object> args = new ArrayList<>(2);
                    if (takesInput) args.add(input);
                    if (ctx) args.add(context);
                    return invoke(m, instance, args.toArray());
                });
            } catch (Fault f) {
                return failing(f);
            } catch (Throwable t) {
                return failing(Fault.of(t, false));
            }
        }

        private static Object invoke(Method m, Object instance, Object[] args) {
            try {
                return m.invoke(instance, args);
            } catch (InvocationTargetException e) {
                throw Main.<RuntimeException>sneaky(filter(e.getCause() != null ? e.getCause() : e));
            } catch (Throwable t) {
                throw Main.<RuntimeException>sneaky(filter(t));
            }
        }

        private static boolean isVoid(Type type) {
            return type == void.class || type == Void.class;
        }

        private static Constructor<?> constructor(Class<?> cls) throws Exception {
            try {
                return cls.getConstructor();
            } catch (NoSuchMethodException e) {
                if (cls.getEnclosingClass() != null && !Modifier.isStatic(cls.getModifiers())) {
                    throw new Exception("Class " + cls.getName()
                            + " cannot be instantiated because it is a non-static inner class");
                }
                throw new Exception("Class " + cls.getName() + " has no public zero-argument constructor", e);
            }
        }

        /** A constructor that throws is fatal: an init error, as in the RIC. */
        private static Object newInstance(Constructor<?> constructor) throws Exception {
            try {
                return constructor.newInstance();
            } catch (InvocationTargetException e) {
                throw Fault.of(e.getCause() == null ? e : e.getCause(), true);
            } catch (InstantiationException e) {
                throw Main.<Exception>sneaky(e.getCause() == null ? e : e.getCause());
            }
        }

        interface StreamCall {
            void handle(InputStream input, OutputStream output, Context context) throws Exception;
        }

        interface PojoCall {
            Object handle(Object input, Context context) throws Exception;
        }

        private static Invoker stream(StreamCall handler) {
            ByteArrayOutputStream output = new ByteArrayOutputStream(1024);
            return (invocation, logger) -> {
                output.reset();
                Context context = new LambdaContext(invocation, logger);
                handler.handle(new ByteArrayInputStream(invocation.body), output, context);
                return output;
            };
        }

        private static Invoker pojo(Type pType, Type rType, PojoCall handler) {
            Json.Serializer in = pType == null ? null : Json.serializer(pType);
            Json.Serializer out = rType == null || isVoid(rType) ? null : Json.serializer(rType);
            return stream((input, output, context) -> {
                Object value;
                try {
                    value = in == null ? null : in.read(input);
                } catch (Throwable t) {
                    throw new RuntimeException("An error occurred during JSON parsing", filter(t));
                }
                Object result;
                try {
                    result = handler.handle(value, context);
                } catch (Throwable t) {
                    throw Main.<Exception>sneaky(filter(t));
                }
                try {
                    if (out != null) {
                        out.write(result, output);
                    } else {
                        output.write(JSON_NULL);
                    }
                } catch (Throwable t) {
                    throw new RuntimeException("An error occurred during JSON serialization of response", t);
                }
            });
        }
    }

    @SuppressWarnings("unchecked")
    static <T extends Throwable> T sneaky(Throwable t) throws T {
        throw (T) t;
    }

    /** The Context of one invocation. */
    static final class LambdaContext implements Context {
        private final RuntimeApi.Invocation invocation;
        private final LambdaLogger logger;
        private final ClientContext clientContext;
        private final com.amazonaws.services.lambda.runtime.CognitoIdentity identity;

        LambdaContext(RuntimeApi.Invocation invocation, LambdaLogger logger) {
            this.invocation = invocation;
            this.logger = logger;
            this.clientContext = Json.clientContext(invocation.clientContext);
            this.identity = Json.cognitoIdentity(invocation.cognitoIdentity);
        }

        public String getAwsRequestId() {
            return invocation.requestId;
        }

        public String getLogGroupName() {
            return System.getenv("AWS_LAMBDA_LOG_GROUP_NAME");
        }

        public String getLogStreamName() {
            return System.getenv("AWS_LAMBDA_LOG_STREAM_NAME");
        }

        public String getFunctionName() {
            return System.getenv("AWS_LAMBDA_FUNCTION_NAME");
        }

        public String getFunctionVersion() {
            return System.getenv("AWS_LAMBDA_FUNCTION_VERSION");
        }

        public String getInvokedFunctionArn() {
            return invocation.functionArn;
        }

        public com.amazonaws.services.lambda.runtime.CognitoIdentity getIdentity() {
            return identity;
        }

        public ClientContext getClientContext() {
            return clientContext;
        }

        public int getRemainingTimeInMillis() {
            return (int) (invocation.deadlineMs - System.currentTimeMillis());
        }

        public int getMemoryLimitInMB() {
            String memory = System.getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
            try {
                return memory == null ? 128 : Integer.parseInt(memory);
            } catch (NumberFormatException e) {
                return 128;
            }
        }

        public LambdaLogger getLogger() {
            return logger;
        }

        public String getXrayTraceId() {
            return invocation.traceId;
        }
    }
}
