// Logs at several levels through console (lrun's Node client formats and filters these from
// AWS_LAMBDA_LOG_FORMAT / AWS_LAMBDA_LOG_LEVEL), for the LoggingConfig tests.
export const handler = async () => {
  console.debug('node debug');
  console.log('node info');
  console.warn('node warn', { n: 1 });
  console.error(new TypeError('node error'));
  process.stdout.write(JSON.stringify({ level: 'debug', message: 'node json debug' }) + '\n');
  return 'ok';
};
