// An ES module handler: Lambda's nodejs24.x runtime loads app.mjs for "app.handler".
export const handler = async (event, context) => {
  console.log('hello invoked with', JSON.stringify(event));
  return { message: `Hello, ${event?.name ?? 'world'}!` };
};
