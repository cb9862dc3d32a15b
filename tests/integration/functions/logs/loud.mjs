// Writes what the event asks for, then returns: the end of it must be in the invocation's log.
//   {"bytes": n}  n bytes of output, 1 KiB lines numbered from 0 ("<number> xxx...\n")
//   {"lines": n}  n console.log lines "line <i>"
//   {"late": ms}  a console.log from a timer that fires ms after the handler returned
// and always, last, one line "last line <tag>".
export const handler = async (event) => {
  const tag = event.tag ?? '';
  if (event.bytes) {
    for (let i = 0; i * 1024 < event.bytes; i++) {
      const head = `${i} `;
      process.stdout.write(head + 'x'.repeat(1023 - head.length) + '\n');
    }
  }
  for (let i = 0; i < (event.lines ?? 0); i++) console.log(`line ${i}`);
  if (event.late) setTimeout(() => console.log(`late line ${tag}`), event.late);
  console.log(`last line ${tag}`);
  return { ok: true };
};
