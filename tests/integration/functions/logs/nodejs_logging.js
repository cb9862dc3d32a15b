// AWS's nodejs-logging sample (aws-lambda-developer-guide, sample-apps/nodejs-logging,
// function/index.js), unchanged but for this comment: with a 2 MB event, lrun used to lose
// its last line.
exports.handler = async function(event, context) {
  console.log("ENVIRONMENT VARIABLES\n" + JSON.stringify(process.env, null, 2))
  console.info("EVENT\n" + JSON.stringify(event, null, 2))
  console.warn("Event not processed.")
  return context.logStreamName
}
