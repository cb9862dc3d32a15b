package com.amazonaws.services.lambda.runtime;

/** A handler of events of type I answering with O, both (de)serialized as JSON. */
public interface RequestHandler<I, O> {
    O handleRequest(I input, Context context);
}
