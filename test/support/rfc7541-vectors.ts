/**
 * RFC 7541 Appendix C, typed from the RFC's text: the header blocks of C.3-C.6 (hex as the RFC
 * prints it), the header lists they carry, and the dynamic table (newest first) and its size
 * after each block. Shared by the HPACK decoder and encoder tests.
 */

export const hex = (s: string): Buffer => Buffer.from(s.replace(/[\s|]/g, ''), 'hex');

const AUTH = ':authority';
export const REQUESTS: [string, string][][] = [
  [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [AUTH, 'www.example.com']],
  [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [AUTH, 'www.example.com'], ['cache-control', 'no-cache']],
  [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [AUTH, 'www.example.com'], ['custom-key', 'custom-value']],
];
export const REQUEST_TABLES: [[string, string][], number][] = [
  [[[AUTH, 'www.example.com']], 57],
  [[['cache-control', 'no-cache'], [AUTH, 'www.example.com']], 110],
  [[['custom-key', 'custom-value'], ['cache-control', 'no-cache'], [AUTH, 'www.example.com']], 164],
];
/** C.3: requests without Huffman coding. */
export const C3 = [
  '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
  '8286 84be 5808 6e6f 2d63 6163 6865',
  '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
];
/** C.4: the same requests with Huffman coding. */
export const C4 = [
  '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
  '8286 84be 5886 a8eb 1064 9cbf',
  '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
];

const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const LOC = 'https://www.example.com';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
export const RESPONSES: [string, string][][] = [
  [[':status', '302'], ['cache-control', 'private'], ['date', DATE1], ['location', LOC]],
  [[':status', '307'], ['cache-control', 'private'], ['date', DATE1], ['location', LOC]],
  [[':status', '200'], ['cache-control', 'private'], ['date', DATE2], ['location', LOC], ['content-encoding', 'gzip'], ['set-cookie', COOKIE]],
];
export const RESPONSE_TABLES: [[string, string][], number][] = [
  [[['location', LOC], ['date', DATE1], ['cache-control', 'private'], [':status', '302']], 222],
  [[[':status', '307'], ['location', LOC], ['date', DATE1], ['cache-control', 'private']], 222],
  [[['set-cookie', COOKIE], ['content-encoding', 'gzip'], ['date', DATE2]], 215],
];
/** C.5: responses without Huffman coding, SETTINGS_HEADER_TABLE_SIZE 256. */
export const C5 = [
  `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a
   3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
  '4803 3330 37c1 c0bf',
  `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04
   677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49
   553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
];
/** C.6: the same responses with Huffman coding. */
export const C6 = [
  `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e
   919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
  '4883 640e ffc1 c0bf',
  `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7
   821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed
   4ee5 b106 3d50 07`,
];
