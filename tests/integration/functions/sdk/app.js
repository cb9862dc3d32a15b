// CommonJS, as AWS's Node.js examples that use the SDK v3 with require().
const { S3Client, from } = require('@aws-sdk/client-s3');

const s3 = new S3Client({});

exports.handler = async () => ({ region: s3.config.region, from });
