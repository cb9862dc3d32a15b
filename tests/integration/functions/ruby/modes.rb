# One handler for each way an invocation can end, for the failure tests of the Ruby runtime.
def handler(event:, context:)
  raise TypeError, "ruby says no: #{event['fail']}" if event['fail']

  sleep(event['sleep']) if event['sleep']
  if event['hog']
    blocks = []
    loop { blocks << ('x' * (16 * 1024 * 1024)) }
  end
  puts "modes handler #{event.to_json}"
  { ok: true, event: event }
end
