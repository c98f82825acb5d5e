/**
 * The largest records the consumers accept; anything larger is dead-lettered as `too-large`. An event is copied into
 * a command and a request body per matching rule, so it is kept well under the broker's 1 MB default.
 */
export const MAX_EVENT_BYTES = 256 * 1024;
/** A command is an event plus a few ids and timestamps. */
export const MAX_COMMAND_BYTES = MAX_EVENT_BYTES + 4 * 1024;
/** Rules and pool announcements: valid ones are a few hundred bytes (rule headers are capped at 8 kB). */
export const MAX_TABLE_ENTRY_BYTES = 64 * 1024;
