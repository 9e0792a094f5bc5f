/** Arguments of the cluster benchmark servers: `--port N --redis URL [--prefix P] [--node ID]`. */
export function clusterArgs(args: string[]): { port: number; redis: string; prefix: string; node: string } {
  let port = NaN
  let redis = ''
  let prefix = 'bench'
  let node = `node-${process.pid}`
  for (let i = 0; i < args.length; i++) {
    const value = args[i + 1] ?? ''
    if (args[i] === '--port') port = Number(value)
    else if (args[i] === '--redis') redis = value
    else if (args[i] === '--prefix') prefix = value
    else if (args[i] === '--node') node = value
    else continue
    i++
  }
  if (!Number.isInteger(port) || port <= 0) throw new Error('--port N is required')
  if (redis === '') throw new Error('--redis URL is required')
  return { port, redis, prefix, node }
}
