/**
 * String syntax checks of the API server, with its messages
 * (k8s.io/apimachinery/pkg/util/validation). Each returns the list of
 * problems; empty = valid.
 */
import { parseCidr, parseIp } from '../../cel/net.js';
import type { NativeFormat } from './types.js';

const DNS1123_LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS1123_SUBDOMAIN = `${DNS1123_LABEL}(\\.${DNS1123_LABEL})*`;
const QUALIFIED_NAME = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const LABEL_VALUE = `(${QUALIFIED_NAME})?`;

const reLabel = new RegExp(`^${DNS1123_LABEL}$`);
const reSubdomain = new RegExp(`^${DNS1123_SUBDOMAIN}$`);
const reQualified = new RegExp(`^${QUALIFIED_NAME}$`);
const reLabelValue = new RegExp(`^${LABEL_VALUE}$`);

export function dns1123Label(v: string): string[] {
  const out: string[] = [];
  if (v.length > 63) out.push('must be no more than 63 characters');
  if (!reLabel.test(v)) {
    out.push(
      `a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc', regex used for validation is '${DNS1123_LABEL}')`,
    );
  }
  return out;
}

export function dns1123Subdomain(v: string): string[] {
  const out: string[] = [];
  if (v.length > 253) out.push('must be no more than 253 characters');
  if (!reSubdomain.test(v)) {
    out.push(
      `a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '${DNS1123_SUBDOMAIN}')`,
    );
  }
  return out;
}

/** IsQualifiedName: `[prefix/]name`, used for label and annotation keys. */
export function qualifiedName(v: string): string[] {
  const out: string[] = [];
  const parts = v.split('/');
  let name = v;
  if (parts.length === 2) {
    const prefix = parts[0] as string;
    name = parts[1] as string;
    if (prefix.length === 0) out.push('prefix part must be non-empty');
    else for (const m of dns1123Subdomain(prefix)) out.push(`prefix part ${m}`);
  } else if (parts.length > 2) {
    out.push(
      `a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc', regex used for validation is '${QUALIFIED_NAME}') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    );
    return out;
  }
  if (name.length === 0) out.push('name part must be non-empty');
  else if (name.length > 63) out.push('name part must be no more than 63 characters');
  if (name.length > 0 && !reQualified.test(name)) {
    out.push(
      `name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc', regex used for validation is '${QUALIFIED_NAME}')`,
    );
  }
  return out;
}

export function labelValue(v: string): string[] {
  const out: string[] = [];
  if (v.length > 63) out.push('must be no more than 63 characters');
  if (!reLabelValue.test(v)) {
    out.push(
      `a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue', or 'my_value', or '12345', regex used for validation is '${LABEL_VALUE}')`,
    );
  }
  return out;
}

/** IsValidPortName (IANA_SVC_NAME). */
export function portName(v: string): string[] {
  const out: string[] = [];
  if (v.length < 1 || v.length > 15) out.push('must be no more than 15 characters');
  if (!/^[-a-z0-9]+$/.test(v))
    out.push('must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)');
  if (!/[a-z]/.test(v)) out.push('must contain at least one letter (a-z)');
  if (v.includes('--')) out.push('must not contain consecutive hyphens');
  if (v.startsWith('-') || v.endsWith('-')) out.push('must not begin or end with a hyphen');
  return out;
}

export function portNumber(n: number): string[] {
  return n >= 1 && n <= 65535 && Number.isInteger(n)
    ? []
    : ['must be between 1 and 65535, inclusive'];
}

export function cidrText(v: string): string[] {
  return parseCidr(v) ? [] : ['must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)'];
}

export function ipText(v: string): string[] {
  return parseIp(v) ? [] : ['must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'];
}

export function checkFormat(format: NativeFormat, v: string): string[] {
  switch (format) {
    case 'label-key':
    case 'qualified-name':
      return qualifiedName(v);
    case 'label-value':
      return labelValue(v);
    case 'dns1123-subdomain':
      return dns1123Subdomain(v);
    case 'dns1123-label':
      return dns1123Label(v);
    case 'port-name':
      return portName(v);
    case 'cidr':
      return cidrText(v);
    case 'ip':
      return ipText(v);
  }
}
