package greeting;

/** A library class the tests ship in lib/greeting.jar. */
public final class Greeting {
    private Greeting() {}

    public static String hello(String name) {
        return "Hello from a jar in lib/, " + name + "!";
    }
}
