// RBAC equals audit: the (verb, group, resource/subresource) set the actuator issues across every
// mode — derived from the test API server's audit log — must equal the allocator's Role in
// deploy/base/rbac.yaml: no more (least privilege), no less (no 403 in a real cluster). The
// actuator runs under an RBAC table made of exactly those rules, so a missing rule also fails.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import type { RbacRule } from "../../../src/kube-sim/index.ts";
import { NS, decision, deployment, hpa, rig, target } from "./support.ts";

const RBAC_FILE = new URL("../../../deploy/base/rbac.yaml", import.meta.url).pathname;
/** Name of the allocator's role in deploy/base/rbac.yaml. */
const ROLE_NAME = "foresight-allocator";

/** The set agreed with the deploy engineer (used when deploy/base/rbac.yaml is not on this branch). */
const AGREED_RULES: RbacRule[] = [
  { apiGroups: ["apps"], resources: ["deployments", "statefulsets"], verbs: ["get", "patch"] },
  { apiGroups: ["apps"], resources: ["deployments/scale", "statefulsets/scale"], verbs: ["get", "patch"] },
  { apiGroups: ["autoscaling"], resources: ["horizontalpodautoscalers"], verbs: ["get", "patch"] },
  { apiGroups: [""], resources: ["pods"], verbs: ["list"] },
  { apiGroups: [""], resources: ["pods/resize"], verbs: ["patch"] },
  { apiGroups: [""], resources: ["events"], verbs: ["create"] },
];

function roleRules(): { rules: RbacRule[]; source: string } {
  if (!existsSync(RBAC_FILE)) return { rules: AGREED_RULES, source: "the agreed rule set (deploy/base/rbac.yaml is not on this branch)" };
  for (const doc of parseAllDocuments(readFileSync(RBAC_FILE, "utf8"))) {
    const o = doc.toJS() as { kind?: string; metadata?: { name?: string }; rules?: RbacRule[] } | null;
    if (o && (o.kind === "Role" || o.kind === "ClusterRole") && o.metadata?.name === ROLE_NAME) return { rules: o.rules ?? [], source: RBAC_FILE };
  }
  throw new Error(`${RBAC_FILE} has no Role or ClusterRole named ${ROLE_NAME}`);
}

/** `verb group resource[/subresource]` tuples a rule set grants. */
function expand(rules: RbacRule[]): Set<string> {
  const out = new Set<string>();
  for (const r of rules) for (const g of r.apiGroups) for (const res of r.resources) for (const v of r.verbs) out.add(`${v} ${g === "" ? "core" : g} ${res}`);
  return out;
}

test("the actuator's requests across all modes equal the allocator's RBAC rules", async () => {
  const { rules, source } = roleRules();
  const user = "system:serviceaccount:foresight:foresight-allocator";
  const r = await rig({
    token: "sa-token",
    sim: { rbac: { tokens: { "sa-token": user }, rules: { [user]: { rules } } } },
    targets: [
      target("shadow-pool", "shadow"),
      target("scale-pool", "scale"),
      { ...target("sts-pool", "scale"), kind: "StatefulSet" },
      target("hpa-pool", "hpa-floor"),
      target("resize-pool", "resize"),
    ],
  });
  try {
    for (const name of ["shadow-pool", "scale-pool", "hpa-pool", "resize-pool"]) r.sim.create(deployment(name, { replicas: 2, requests: { cpu: "250m", memory: "256Mi" } }), { manager: "foresight" });
    r.sim.create({ ...deployment("sts-pool", { replicas: 2 }), kind: "StatefulSet" });
    r.sim.create(hpa("hpa-pool", 2, 10));
    const res = { cpuMillicores: 500, memoryMiB: 512 };
    for (const pool of ["shadow-pool", "scale-pool", "sts-pool", "hpa-pool", "resize-pool"]) r.actuator.submit(decision(pool, 4, res));
    await r.actuator.idle();
    const outcomes = new Map(r.outcomes.map((o) => [o.pool, o.outcome]));
    assert.equal(Object.fromEntries(outcomes), { "shadow-pool": "shadow", "scale-pool": "applied", "sts-pool": "applied", "hpa-pool": "applied", "resize-pool": "applied" });
    const denied = r.sim.audit.filter((a) => a.code === 403);
    assert.equal(denied, [], `requests refused by the role from ${source}`);
    const issued = new Set(r.sim.audit.map((a) => `${a.verb} ${a.group === "" ? "core" : a.group} ${a.subresource ? `${a.resource}/${a.subresource}` : a.resource}`));
    const granted = expand(rules);
    const extra = [...granted].filter((x) => !issued.has(x)).sort();
    const missing = [...issued].filter((x) => !granted.has(x)).sort();
    assert.equal({ grantedButNeverIssued: extra, issuedButNotGranted: missing }, { grantedButNeverIssued: [], issuedButNotGranted: [] }, `RBAC (${source}) differs from the audit`);
  } finally {
    await r.close();
  }
});

test.run();
