// Structured logs for long-running processes: one line per event, either
// `time level message key=value …` or one JSON object per line (--log-format
// json), to stderr so stdout stays free for command output.

export type LogFormat = 'text' | 'json'
export type Level = 'debug' | 'info' | 'warn' | 'error'

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
  debug(msg: string, fields?: Record<string, unknown>): void
}

const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 }

function textValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v)
  return /[\s"=]/.test(s) ? JSON.stringify(s) : s
}

export function createLogger(
  format: LogFormat,
  o: { level?: Level; write?: (line: string) => void; base?: Record<string, unknown> } = {},
): Logger {
  const min = ORDER[o.level ?? 'info']
  const write = o.write ?? ((l: string) => process.stderr.write(l))
  const emit = (level: Level, msg: string, fields: Record<string, unknown> = {}) => {
    if (ORDER[level] < min) return
    const time = new Date().toISOString()
    const all = { ...o.base, ...fields }
    if (format === 'json') write(`${JSON.stringify({ time, level, msg, ...all })}\n`)
    else {
      const kv = Object.entries(all)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${textValue(v)}`)
      write(`${time} ${level.toUpperCase().padEnd(5)} ${msg}${kv.length ? ` ${kv.join(' ')}` : ''}\n`)
    }
  }
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  }
}
