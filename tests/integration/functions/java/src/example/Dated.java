package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.time.Instant;
import java.time.LocalDate;
import java.util.Optional;

/** A POJO with java.time and Optional fields, in and out (the Jackson modules AWS registers). */
public class Dated implements RequestHandler<Dated.Event, Dated.Event> {
    public static class Event {
        public Instant at;
        public LocalDate day;
        public Optional<String> note = Optional.empty();
        public Optional<String> missing = Optional.empty();
    }

    @Override
    public Event handleRequest(Event in, Context context) {
        Event out = new Event();
        out.at = in.at.plusSeconds(60);
        out.day = in.day.plusDays(1);
        out.note = in.note.map(String::toUpperCase);
        return out;
    }
}
