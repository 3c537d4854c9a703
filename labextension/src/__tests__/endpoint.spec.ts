/** The protocol paths and the curl command of a deployment's panel. */
import { curlCommand, protocolUrls, shellQuote } from '../endpoint';

const lin = { name: 'lin', url: 'http://127.0.0.1:9000' };

describe('endpoint', () => {
  it('puts the v1 and v2 paths under the base URL, with or without a trailing slash', () => {
    const expected = {
      v1: 'http://127.0.0.1:9000/v1/models/lin:predict',
      v2: 'http://127.0.0.1:9000/v2/models/lin/infer'
    };
    expect(protocolUrls(lin)).toEqual(expected);
    expect(protocolUrls({ ...lin, url: `${lin.url}/` })).toEqual(expected);
  });

  it('builds the curl command that `models describe` prints', () => {
    expect(curlCommand(lin)).toBe(
      "curl -s -H 'Content-Type: application/json' -d '{\"instances\": [[1.0, 2.0]]}' " +
        'http://127.0.0.1:9000/v1/models/lin:predict'
    );
  });

  it('quotes words for a shell only when needed', () => {
    expect(shellQuote('http://h:1/v1/models/m:predict')).toBe('http://h:1/v1/models/m:predict');
    expect(shellQuote("it's")).toBe(`'it'"'"'s'`);
    expect(shellQuote('a b')).toBe("'a b'");
  });
});
