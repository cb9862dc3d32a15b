# Ruby's runtime writes what the function prints as it is; with LoggingConfig JSON, Lambda
# filters the lines that are JSON objects by their "level" (for the LoggingConfig tests).
require 'json'

def handler(event:, context:)
  puts 'ruby plain'
  puts({ level: 'debug', message: 'ruby json debug' }.to_json)
  puts({ level: 'error', message: 'ruby json error' }.to_json)
  'ok'
end
