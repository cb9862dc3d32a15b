module Greeting
  def self.greet(name) = "Hello from a layer, #{name}!"
end
