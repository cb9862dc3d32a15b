# frozen_string_literal: true

# lrun's Ruby runtime interface client: a small, dependency-free stand-in for AWS's
# aws_lambda_ric gem (which backs ruby3.3). It talks to the Lambda Runtime API at
# $AWS_LAMBDA_RUNTIME_API and copies what a function can observe of that client: how _HANDLER
# ("file.method", "file.Module::Class.method") is resolved, the keyword call
# handler(event:, context:), the context object, error types ("Init<LoadError>",
# "Function<RuntimeError>") and bodies, and its log lines: an error is written to stderr as
# "Error raised from handler method" (or "Init error when loading handler") followed by the
# error's JSON, pretty-printed. The function's own output passes through as it is.
#
# Exit codes: 1 after an init error (once POST /runtime/init/error is done), or when the Runtime
# API itself fails. Not supported: response streaming.

require 'json'
require 'net/http'

$stdout.sync = true
$stderr.sync = true

module LrunRuby
  API_PREFIX = '/2018-06-01/runtime'

  # An error as the runtime reports it: "<classification><ErrorClass>", message, stack trace.
  class ReportedError
    attr_reader :error_type

    def initialize(error, classification)
      @error_type = "#{classification}<#{error.class}>"
      @message = error.message
      @trace = (error.backtrace_locations || []).map { |l| "#{l.path}:#{l.lineno}:in `#{l.label}'" }
    end

    def to_h
      { errorMessage: @message, errorType: @error_type, stackTrace: @trace }
    end

    def log(title)
      warn title
      warn JSON.pretty_generate(to_h)
    end
  end

  # The context object's interface, as aws_lambda_ric's LambdaContext.
  class Context
    attr_reader :aws_request_id, :invoked_function_arn, :log_group_name, :log_stream_name,
                :function_name, :memory_limit_in_mb, :function_version, :identity,
                :client_context, :deadline_ms

    def initialize(headers)
      @aws_request_id = headers['lambda-runtime-aws-request-id']
      @invoked_function_arn = headers['lambda-runtime-invoked-function-arn']
      @deadline_ms = headers['lambda-runtime-deadline-ms'].to_i
      @identity = parse(headers['lambda-runtime-cognito-identity'])
      @client_context = parse(headers['lambda-runtime-client-context'])
      @log_group_name = ENV['AWS_LAMBDA_LOG_GROUP_NAME']
      @log_stream_name = ENV['AWS_LAMBDA_LOG_STREAM_NAME']
      @function_name = ENV['AWS_LAMBDA_FUNCTION_NAME']
      @memory_limit_in_mb = ENV['AWS_LAMBDA_FUNCTION_MEMORY_SIZE']
      @function_version = ENV['AWS_LAMBDA_FUNCTION_VERSION']
    end

    def get_remaining_time_in_millis
      [@deadline_ms - (Time.now.to_f * 1000).to_i, 0].max
    end

    private

    def parse(text)
      text.nil? || text.empty? ? nil : JSON.parse(text)
    end
  end

  # The Runtime API over one kept-alive connection; /next waits as long as it takes.
  class RuntimeApi
    def initialize(address)
      host, port = address.split(':')
      @http = Net::HTTP.new(host, port.to_i)
      @http.read_timeout = nil
      @http.keep_alive_timeout = 3600
      @http.start
    end

    def next_invocation
      response = @http.request(Net::HTTP::Get.new("#{API_PREFIX}/invocation/next"))
      raise "GET /invocation/next answered #{response.code}: #{response.body}" unless response.code == '200'

      response
    end

    def respond(request_id, body)
      post("/invocation/#{request_id}/response", body)
    end

    def error(request_id, reported)
      post("/invocation/#{request_id}/error", JSON.generate(reported.to_h),
           'Lambda-Runtime-Function-Error-Type' => reported.error_type)
    end

    def init_error(reported)
      post('/init/error', JSON.generate(reported.to_h),
           'Lambda-Runtime-Function-Error-Type' => reported.error_type)
    end

    private

    def post(route, body, headers = {})
      request = Net::HTTP::Post.new("#{API_PREFIX}#{route}", { 'Content-Type' => 'application/json' }.merge(headers))
      request.body = body
      @http.request(request)
    end
  end

  # "file.method" or "file.Module::Class.method": the file under LAMBDA_TASK_ROOT and the
  # method, on a class or module or else at the top level, called with event: and context:.
  class Handler
    def initialize(name, root)
      file, _, method = name.rpartition('.')
      file, _, @owner = file.partition('.') if file.include?('.')
      @file = File.join(root, file)
      @method = method
    end

    def load
      require @file
      self
    end

    def call(event, context)
      receiver = @owner.nil? || @owner.empty? ? self : Object.const_get(@owner)
      receiver.send(@method, event: event, context: context)
    end
  end

  def self.run
    api = RuntimeApi.new(ENV.fetch('AWS_LAMBDA_RUNTIME_API'))
    begin
      handler = Handler.new(ENV.fetch('_HANDLER', ''), ENV.fetch('LAMBDA_TASK_ROOT', Dir.pwd)).load
    rescue Exception => e # rubocop:disable Lint/RescueException -- init fails on any error, as AWS's
      reported = ReportedError.new(e, 'Init')
      reported.log('Init error when loading handler')
      api.init_error(reported)
      exit!(1)
    end
    loop do
      response = api.next_invocation
      serve(api, handler, response)
    end
  end

  def self.serve(api, handler, response)
    headers = response.each_header.to_h
    request_id = headers['lambda-runtime-aws-request-id']
    trace_id = headers['lambda-runtime-trace-id']
    trace_id.nil? || trace_id.empty? ? ENV.delete('_X_AMZN_TRACE_ID') : ENV['_X_AMZN_TRACE_ID'] = trace_id
    begin
      result = handler.call(JSON.parse(response.body || 'null'), Context.new(headers))
      body = JSON.generate(result)
    rescue Exception => e # rubocop:disable Lint/RescueException -- reported, not fatal
      reported = ReportedError.new(e, 'Function')
      reported.log('Error raised from handler method')
      api.error(request_id, reported)
      return
    end
    api.respond(request_id, body)
  end
end

begin
  LrunRuby.run
rescue SystemExit
  raise
rescue Exception => e # rubocop:disable Lint/RescueException
  warn "lrun runtime: the Runtime API failed: #{e.full_message}"
  exit!(1)
end
