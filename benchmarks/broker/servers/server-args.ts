/** Arguments shared by the benchmark server scripts: `--port N [--transport tcp|ws]`. */
export function serverArgs (args: string[]): { port: number; transport: 'tcp' | 'ws' } {
  let port = NaN
  let transport: 'tcp' | 'ws' = 'tcp'
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--port') port = Number(args[++i])
    else if (args[i] === '--transport') transport = args[++i] === 'ws' ? 'ws' : 'tcp'
  }
  if (!Number.isInteger(port) || port <= 0) throw new Error('--port N is required')
  return { port, transport }
}
