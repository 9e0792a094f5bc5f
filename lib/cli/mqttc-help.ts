/** `mqttc --help`: a manual page. */
import { EXIT_TABLE } from './exit-codes.js'

/** The manual text. */
export function mqttcHelp(): string {
  return `NAME
       mqttc — MQTT broker access from the command line (MQTT 3.1, 3.1.1 and 5.0)

SYNOPSIS
       mqttc [pub|sub] [options] [address]

DESCRIPTION
       Connects to the broker at address and publishes a message, subscribes with topic
       filters, does both, asks an MQTT 5 request and prints the response, or, with none of
       these, checks that the broker accepts a connection and answers a PINGREQ within
       -timeout (exit status 0) and disconnects.

       address is host, host:port, :port or a URL: mqtt://, mqtts://, ws://, wss://,
       mqtt+unix:///path. Default localhost, port 1883 (8883 with TLS); the environment
       variable MQTTC_PORT changes the default port.

       Both spellings work: pascaldekloe mqttc's single-dash words (-publish, -subscribe,
       -tls, -ca, -cert, -key, -user, -pass, -timeout, ...) and mosquitto_pub/sub's flags
       (-t -m -l -n -f -q -r -C -W -F -N -R -v -V --will-* ...). A dash and one letter is a
       mosquitto flag; -name, --name and --name=value are long flags. -h is the host, never help.
       -t is the topic when a payload is given (-m -f -s -l -n, or "pub"), a filter otherwise.
       With both a publication and filters, mqttc subscribes first, then publishes.

CONNECTION
       -h HOST, -p PORT, -L URL, --unix PATH, -net tcp|tcp4|tcp6|unix
       -V 31|311|5           protocol version (also mqttv31, mqttv311, mqttv5); default 3.1.1
       -i ID, -client ID     client identifier; -I PREFIX: PREFIX + pid; default mqttc-<pid>-<hex>
       -k SECS               keepalive (default 60)
       -c                    persistent session (clean start off); -x SECS|-1: session expiry (v5)
       -u NAME, -user NAME   user name
       -pass FILE            password from a file (not visible in ps); one trailing newline dropped
       --password-prompt     ask for the password on the terminal
       -P PASS               password on the command line (visible to other users: avoid)
       -tls                  TLS (default port 8883)
       -ca FILE              amend the system's trusted CAs with a PEM file (implies TLS)
       --cafile FILE, --capath DIR   replace the trusted CAs (implies TLS)
       -cert FILE, -key FILE client certificate and key (PEM; each needs the other)
       -server NAME          TLS server name (SNI and verification)
       --insecure            do not check the server's host name (the chain is still verified)
       --tls-version V, --ciphers LIST, --tls-alpn PROTO
       --will-topic T, --will-payload P, --will-qos Q, --will-retain
       -D CMD ID [NAME] VALUE  MQTT 5 property (implies -V 5). CMD: connect, publish, will,
                             subscribe. E.g. -D publish user-property k v,
                             -D connect session-expiry-interval 60, -D publish content-type text/plain
       -timeout DURATION     limit of each operation: connect, each acknowledgement, the drain
                             on exit (Go syntax 4s, 250ms, 1m, or seconds; default 4s)
       --session DIR         keep the session (QoS 1/2 in flight) in DIR: with -l, every line
                             journaled survives a crash and is sent by the next run (needs -c -i)
       -M N                  QoS 1/2 messages in flight at most (default 1000)

PUBLISH
       -publish TOPIC        publish standard input as one message (mqttc)
       -t TOPIC with one of:
         -m MSG              the message
         -f FILE             the file's content
         -s                  standard input, whole (at most 256 MiB)
         -l                  one message per line of standard input (split at LF; CR kept; an
                             empty line is an empty message)
         -n                  an empty message
       -q 0|1|2, -r          QoS, retain; --repeat N, --repeat-delay SECS
       --response-topic T    MQTT 5 request: subscribe to T, publish with Response Topic and
                             Correlation Data (--correlation-data, default random), print the
                             response (or -C N responses), exit 0; none within -timeout (-W): 1 (27)
       --content-type T, --message-expiry SECS, --user-property NAME=VALUE (repeatable)

SUBSCRIBE
       -subscribe FILTER, -t FILTER   repeatable; -q sets the maximum QoS
       -T FILTER             do not print topics matching FILTER
       -U FILTER             unsubscribe FILTER first (clean up a persistent session)
       -C N                  exit 0 after N messages; -E exit 0 once subscribed
       -R                    do not print retained (stale) messages
       --retained-only       print retained messages only; exit 0 at the first live one
       --remove-retained     clear each retained message received
       --retain-as-published MQTT 5 subscription option
       -W SECS               stop after SECS; exit 27 (as mosquitto_sub)

OUTPUT
       Payloads go to standard output as raw bytes; diagnostics to standard error.
       default               the payload and a newline (mosquitto_sub)
       -v, --verbose         "topic payload" (mosquitto_sub); -N: no newline after a message
       -F FORMAT             mosquitto_sub's format: %t topic, %p payload, %x/%X payload in hex,
                             %l length, %q QoS, %r retain, %I ISO time, %U Unix time, %j/%J JSON,
                             MQTT 5: %C content type, %D correlation data, %E expiry, %F format
                             indicator, %P user properties, %R response topic, %S subscription
                             ids; %%; width, - and 0 flags (%5l, %-5q, %05l); escapes \\n \\t \\r
                             \\0 \\a \\e \\v \\\\; time @Y @m @d @H @M @S @z @s @N @@
       --json                one JSON object per line: time, topic, qos, retain, payload (UTF-8,
                             or base64 with "encoding":"base64"), properties
       -topic, -prefix S, -suffix S, -quote   mqttc: [topic ]prefix payload suffix (suffix
                             default "\\n"); -quote prints Go-quoted strings
       -quiet, --quiet       nothing on standard error; the exit status still tells
       -verbose, --progress  progress on standard error (connected, subscribed, published,
                             journaled N with --session)
       -d, --debug           packet trace on standard error, one line per packet sent or
                             received, as mosquitto_pub/sub -d
       --help, --version

EXIT STATUS
${EXIT_TABLE}

       Unlike mosquitto_pub/sub (which exit with the raw CONNACK code and 0 on signals), the
       statuses follow pascaldekloe mqttc, so scripts can tell a refusal from a usage error.

EXAMPLES
       Send a message:           echo "hello" | mqttc -publish chat/misc localhost
       Print messages:           mqttc -subscribe "news/#" -prefix "📥 " :1883
       Health check:             mqttc -tls q1.example.com:8883 || echo "exit $?"
       mosquitto style:          mqttc -t sensors/+ -v -C 10 -W 30
       Durable line publisher:   tail -f log | mqttc -l -q 1 -c -i feeder --session ~/.feeder -t logs
       Request/response (v5):    mqttc -t rpc/time -m now --response-topic rpc/reply/me
`
}
