require 'greeting' # from the layer's ruby/lib, on RUBYLIB as on Lambda

def handler(event:, context:)
  { greeting: Greeting.greet(event['name']), file: $LOADED_FEATURES.grep(/greeting/).first }
end
