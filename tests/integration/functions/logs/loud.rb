# Writes what the event asks for, then returns (the same as loud.mjs, for Ruby).
def handler(event:, context:)
  tag = event['tag'] || ''
  ((event['bytes'] || 0) + 1023).div(1024).times do |i|
    head = "#{i} "
    $stdout.write(head + 'x' * (1023 - head.length) + "\n")
  end
  (event['lines'] || 0).times { |i| puts "line #{i}" }
  if event['late']
    Thread.new do
      sleep(event['late'] / 1000.0)
      puts "late line #{tag}"
    end
  end
  puts "last line #{tag}"
  { ok: true }
end
