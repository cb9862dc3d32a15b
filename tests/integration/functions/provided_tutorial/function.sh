# function.sh of AWS's "Tutorial: Building a custom runtime" (AWS Lambda Developer Guide,
# docs.aws.amazon.com/lambda/latest/dg/runtimes-walkthrough.html), unchanged below this comment.
function handler () {
  EVENT_DATA=$1

  RESPONSE="{\"statusCode\": 200, \"body\": \"Hello from Lambda!\"}"
  echo $RESPONSE
}
