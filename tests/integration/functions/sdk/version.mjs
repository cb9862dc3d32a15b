export const handler = async () => ({ node: process.version, execPath: process.execPath });
