// A callback-style handler, as AWS's older Node.js examples write them.
exports.handler = (event, context, callback) => callback(null, { called: 'back' });
