// One handler for each way an invocation can end, for the failure tests of every Node.js runtime.
export const handler = async (event) => {
  if (event.fail) throw new TypeError(`node says no: ${event.fail}`);
  if (event.sleep) await new Promise((resolve) => setTimeout(resolve, event.sleep * 1000));
  if (event.hog) {
    const blocks = [];
    for (;;) blocks.push(Buffer.alloc(16 * 1024 * 1024, 1));
  }
  console.log('modes handler', JSON.stringify(event));
  return { ok: true, event };
};
