export const handler = async (event) => {
  if (event.fail) {
    throw new TypeError(`node says no: ${event.fail}`);
  }
  console.log("node handler", JSON.stringify(event));
  return { node: process.version, event };
};
