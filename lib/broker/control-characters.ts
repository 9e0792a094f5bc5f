import { ReasonCode } from '../packet/reason-codes.js'
import { hasControlCharacter } from '../util/control-characters.js'

/**
 * The CONNACK reason code refusing a CONNECT for control characters (option
 * `refuseControlCharacters`): 0x85 Client Identifier not valid for the client id (3.1.1
 * [MQTT-3.1.3-9]: return code 2), 0x86 Bad User Name or Password for the user name (return code 4:
 * "the data in the user name or password is malformed"); undefined when neither holds one.
 */
export function controlCharacterRefusal(clientId: string, username: string | undefined): number | undefined {
  if (hasControlCharacter(clientId)) return ReasonCode.ClientIdentifierNotValid
  if (username !== undefined && hasControlCharacter(username)) return ReasonCode.BadUserNameOrPassword
  return undefined
}
