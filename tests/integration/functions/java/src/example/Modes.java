package example;

import com.amazonaws.services.lambda.runtime.Context;
import java.lang.reflect.Field;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** One handler for each way an invocation can end, for the failure tests of the java21 runtime. */
public class Modes {
    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) throws Exception {
        if (event.get("fail") != null) {
            throw new IllegalStateException("java says no: " + event.get("fail"));
        }
        if (event.get("sleep") != null) {
            Thread.sleep(((Number) event.get("sleep")).longValue() * 1000);
        }
        if (event.get("hog") != null) {
            hogNativeMemory();
        }
        if (event.get("heap") != null) {
            List<long[]> blocks = new ArrayList<>();
            while (true) {
                blocks.add(new long[2 * 1024 * 1024]);
            }
        }
        System.out.println("modes handler " + event);
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("ok", true);
        result.put("event", event);
        return result;
    }

    /** Memory outside the heap (which the JVM's own limit would stop first): the container's
     * limit is what ends it, as a runaway native library would on Lambda. */
    @SuppressWarnings("removal")
    private static void hogNativeMemory() throws Exception {
        Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
        f.setAccessible(true);
        sun.misc.Unsafe unsafe = (sun.misc.Unsafe) f.get(null);
        long block = 16L * 1024 * 1024;
        while (true) {
            long address = unsafe.allocateMemory(block);
            unsafe.setMemory(address, block, (byte) 1);
        }
    }
}
