-- wrk script for the Invoke API: POST the event {"x": 1} (bench/serve_bench.py's throughput).
--   wrk -t1 -c8 -d10s --latency -s bench/post.lua http://127.0.0.1:PORT/2015-03-31/functions/Echo/invocations
wrk.method = "POST"
wrk.body = '{"x": 1}'
wrk.headers["Content-Type"] = "application/json"
