/** Cluster names are DNS labels: they become etcd key segments and appear in metric labels. */
const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function checkClusterName(name: string): void {
  if (!NAME.test(name))
    throw new Error(
      `cluster name ${JSON.stringify(name)}: must be a DNS label (lowercase letters, digits, '-', at most 63)`,
    );
}
