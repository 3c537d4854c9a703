/**
 * How a deployment's endpoint is called from outside the lab: its protocol paths and a curl
 * command (the same as `models describe` prints).
 */
import type { Deployment } from './tokens';

/** The rows the try-it box and the curl command start with. */
export const EXAMPLE_INSTANCES = '[[1.0, 2.0]]';

/** The KServe v1 predict and Open Inference Protocol (v2) infer URLs of a deployment. */
export function protocolUrls(deployment: Pick<Deployment, 'name' | 'url'>): {
  v1: string;
  v2: string;
} {
  const base = deployment.url.replace(/\/+$/, '');
  return {
    v1: `${base}/v1/models/${deployment.name}:predict`,
    v2: `${base}/v2/models/${deployment.name}/infer`
  };
}

/** A word for a POSIX shell: as is when nothing in it is special, else single-quoted. */
export function shellQuote(word: string): string {
  if (/^[\w@%+=:,./-]+$/.test(word)) {
    return word;
  }
  return `'${word.replace(/'/g, `'"'"'`)}'`;
}

/** A curl command that asks the deployment's v1 endpoint to predict `instances` (JSON). */
export function curlCommand(
  deployment: Pick<Deployment, 'name' | 'url'>,
  instances: string = EXAMPLE_INSTANCES
): string {
  const body = `{"instances": ${instances.trim()}}`;
  return (
    `curl -s -H 'Content-Type: application/json' -d ${shellQuote(body)} ` +
    shellQuote(protocolUrls(deployment).v1)
  );
}
