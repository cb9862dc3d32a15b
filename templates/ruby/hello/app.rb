# A Ruby handler: Lambda's ruby3.3 runtime loads app.rb and calls handler(event:, context:)
# for "app.handler"; what it returns is the response, as JSON.
def handler(event:, context:)
  puts "hello invoked with #{event.to_json}"
  { message: "Hello, #{event['name'] || 'world'}!" }
end
