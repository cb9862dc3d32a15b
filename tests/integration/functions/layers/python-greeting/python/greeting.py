def greet(name):
    return f"Hello from a layer, {name}!"
