// An ES module, as AWS's Node.js examples that import the SDK v3.
import { S3Client, from } from '@aws-sdk/client-s3';

const s3 = new S3Client({});

export const handler = async () => ({ region: s3.config.region, from });
