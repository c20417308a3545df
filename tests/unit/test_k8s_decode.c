// SPDX-License-Identifier: Apache-2.0
/*
 * Kubernetes API objects to the model: realistic objects as the API server
 * serves them, the API's defaults, dual stack, the encoders' round trip, and
 * a table of malformed objects with the error each must produce.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "k8s_model.h"

/*
 * JSON written with single quotes so the fixtures stay readable; no fixture
 * needs a literal single quote.
 */
static json_t *J(const char *text)
{
	char *s = strdup(text);
	json_error_t jerr;
	json_t *v;

	assert_non_null(s);
	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	/* ALLOW_NUL: the decoder, not the parser, must refuse NULs inside strings. */
	v = json_loads(s, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
	free(s);
	if (!v)
		fail_msg("fixture: %s at %d:%d: %s", jerr.text, jerr.line, jerr.column, text);
	return v;
}

static struct k8s_object *decode_ok(enum k8s_kind kind, const char *text)
{
	json_t *v = J(text);
	char err[256];
	struct k8s_object *o = k8s_decode(kind, v, err, sizeof(err));

	if (!o)
		fail_msg("%s: %s", text, err);
	assert_int_equal(o->kind, kind);
	json_decref(v);
	return o;
}

/* Decode must fail with an error containing want (the whole error when exact). */
static void refused_v(enum k8s_kind kind, json_t *v, const char *want, bool exact,
		      const char *label)
{
	char err[512] = "untouched";
	struct k8s_object *o = k8s_decode(kind, v, err, sizeof(err));

	if (o) {
		k8s_object_free(o);
		fail_msg("%s: decoded, expected \"%s\"", label, want);
	}
	if (exact ? strcmp(err, want) : !strstr(err, want))
		fail_msg("%s: error \"%s\" %s \"%s\"", label, err, exact ? "is not" : "lacks", want);
}

static void refused(enum k8s_kind kind, const char *text, const char *want)
{
	json_t *v = J(text);

	refused_v(kind, v, want, false, text);
	json_decref(v);
}

static void assert_ip(struct in_addr a, const char *want)
{
	char buf[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static void assert_key(const struct k8s_object *o, const char *want)
{
	char *key = k8s_object_key(o);

	assert_non_null(key);
	assert_string_equal(key, want);
	free(key);
}

/* Encode, decode again: the same object, resourceVersion included. */
static void assert_roundtrip(const struct k8s_object *o)
{
	json_t *v = o->kind == K8S_SERVICE ? k8s_service_to_json(&o->svc)
					   : k8s_endpointslice_to_json(&o->eps);
	struct k8s_object *again;
	char err[256];
	char *text;

	assert_non_null(v);
	/* Through text too: what berthctl prints must read back. */
	text = json_dumps(v, JSON_COMPACT);
	assert_non_null(text);
	json_decref(v);
	v = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(v);
	again = k8s_decode(o->kind, v, err, sizeof(err));
	if (!again)
		fail_msg("re-decode of %s: %s", text, err);
	if (!k8s_object_equal(o, again))
		fail_msg("round trip changed the object: %s", text);
	assert_string_equal(o->meta.rv, again->meta.rv);
	k8s_object_free(again);
	json_decref(v);
	free(text);
}

/* ------------------------------------------------------------ Services */

/* As `kubectl get svc web -o json` shows it, server-set fields and all. */
static const char svc_web[] =
	"{'apiVersion':'v1','kind':'Service',"
	" 'metadata':{'name':'web','namespace':'default','uid':'6f1c2d4e-8a9b-4c3d-9e2f-1a2b3c4d5e6f',"
	"  'resourceVersion':'48213','creationTimestamp':'2024-05-01T10:00:00Z',"
	"  'labels':{'app':'web'},'annotations':{'kubectl.kubernetes.io/last-applied-configuration':'{}'},"
	"  'managedFields':[{'manager':'kubectl','operation':'Update','fieldsV1':{'f:spec':{}}}]},"
	" 'spec':{'clusterIP':'198.18.100.10','clusterIPs':['198.18.100.10'],"
	"  'ipFamilies':['IPv4'],'ipFamilyPolicy':'SingleStack',"
	"  'ports':[{'name':'http','protocol':'TCP','port':80,'targetPort':8080},"
	"           {'name':'https','protocol':'TCP','port':443,'targetPort':'https'},"
	"           {'name':'dns','protocol':'UDP','port':53},"
	"           {'name':'sig','protocol':'SCTP','port':9000,'targetPort':0,'appProtocol':'x'}],"
	"  'selector':{'app':'web'},'sessionAffinity':'None','type':'ClusterIP',"
	"  'internalTrafficPolicy':'Cluster'},"
	" 'status':{'loadBalancer':{}}}";

static void test_service_cluster_ip(void **state)
{
	struct k8s_object *o = decode_ok(K8S_SERVICE, svc_web);
	const struct k8s_service *s = &o->svc;

	assert_string_equal(s->meta.ns, "default");
	assert_string_equal(s->meta.name, "web");
	assert_string_equal(s->meta.uid, "6f1c2d4e-8a9b-4c3d-9e2f-1a2b3c4d5e6f");
	assert_string_equal(s->meta.rv, "48213");
	assert_key(o, "default/web");
	assert_int_equal(s->type, SVC_CLUSTER_IP);
	assert_false(s->headless);
	assert_int_equal(s->n_cluster_ips, 1);
	assert_ip(s->cluster_ips[0], "198.18.100.10");

	assert_int_equal(s->n_ports, 4);
	assert_string_equal(s->ports[0].name, "http");
	assert_int_equal(s->ports[0].proto, L4_TCP);
	assert_int_equal(s->ports[0].port, 80);
	assert_int_equal(s->ports[0].target_port, 8080);
	assert_null(s->ports[0].target_port_name);
	assert_int_equal(s->ports[0].node_port, 0);
	/* Named targetPort: resolved per endpoint through the slice's ports. */
	assert_int_equal(s->ports[1].port, 443);
	assert_int_equal(s->ports[1].target_port, 0);
	assert_string_equal(s->ports[1].target_port_name, "https");
	/* Absent and 0 targetPort both mean "same as port". */
	assert_int_equal(s->ports[2].proto, L4_UDP);
	assert_int_equal(s->ports[2].target_port, 53);
	assert_int_equal(s->ports[3].proto, L4_SCTP);
	assert_int_equal(s->ports[3].target_port, 9000);

	assert_int_equal(s->n_external_ips, 0);
	assert_null(s->external_ips);
	assert_int_equal(s->n_lb_ingress, 0);
	assert_int_equal(s->n_source_ranges, 0);
	assert_false(s->affinity_client_ip);
	assert_int_equal(s->affinity_timeout_s, 10800);
	assert_false(s->external_local);
	assert_false(s->internal_local);
	assert_int_equal(s->health_check_node_port, 0);
	assert_roundtrip(o);
	k8s_object_free(o);
}

static void test_service_minimal_defaults(void **state)
{
	/* A hand-written manifest: nothing but what is required. JSON null is "absent". */
	struct k8s_object *o = decode_ok(
		K8S_SERVICE, "{'metadata':{'name':'x','namespace':'y'},"
			     " 'spec':{'ports':[{'port':80,'name':null,'protocol':null}],'type':null,"
			     "  'clusterIP':'','sessionAffinity':null,'externalIPs':null}}");
	const struct k8s_service *s = &o->svc;
	json_t *v;

	assert_int_equal(s->type, SVC_CLUSTER_IP);
	assert_string_equal(s->meta.uid, "");
	assert_string_equal(s->meta.rv, "");
	assert_int_equal(s->n_cluster_ips, 0);
	assert_false(s->headless);
	assert_int_equal(s->n_ports, 1);
	assert_string_equal(s->ports[0].name, "");
	assert_int_equal(s->ports[0].proto, L4_TCP);
	assert_int_equal(s->ports[0].target_port, 80);
	assert_int_equal(s->affinity_timeout_s, 10800);

	/* The encoder spells the defaults out. */
	v = k8s_service_to_json(s);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(json_object_get(v, "spec"), "type")),
			    "ClusterIP");
	{
		json_t *spec = json_object_get(v, "spec");
		json_t *p = json_array_get(json_object_get(spec, "ports"), 0);

		assert_string_equal(json_string_value(json_object_get(p, "protocol")), "TCP");
		assert_int_equal(json_integer_value(json_object_get(p, "targetPort")), 80);
		assert_null(json_object_get(p, "name"));
		assert_null(json_object_get(p, "nodePort"));
		assert_string_equal(json_string_value(json_object_get(spec, "sessionAffinity")), "None");
		assert_string_equal(json_string_value(json_object_get(spec, "externalTrafficPolicy")),
				    "Cluster");
		assert_string_equal(json_string_value(json_object_get(spec, "internalTrafficPolicy")),
				    "Cluster");
		assert_null(json_object_get(spec, "clusterIP"));
		assert_string_equal(json_string_value(json_object_get(v, "kind")), "Service");
	}
	json_decref(v);
	assert_roundtrip(o);
	k8s_object_free(o);
}

static void test_service_node_port(void **state)
{
	struct k8s_object *o = decode_ok(
		K8S_SERVICE,
		"{'metadata':{'name':'np','namespace':'shop'},"
		" 'spec':{'type':'NodePort','clusterIP':'198.18.100.20','clusterIPs':['198.18.100.20'],"
		"  'externalTrafficPolicy':'Local','internalTrafficPolicy':'Local',"
		"  'ports':[{'name':'http','protocol':'TCP','port':80,'targetPort':'http-alt','nodePort':30080},"
		"           {'name':'q','protocol':'UDP','port':5000,'targetPort':5001,'nodePort':31000}]}}");
	const struct k8s_service *s = &o->svc;

	assert_int_equal(s->type, SVC_NODE_PORT);
	assert_true(s->external_local);
	assert_true(s->internal_local);
	assert_int_equal(s->ports[0].node_port, 30080);
	assert_string_equal(s->ports[0].target_port_name, "http-alt");
	assert_int_equal(s->ports[1].node_port, 31000);
	assert_int_equal(s->ports[1].target_port, 5001);
	assert_key(o, "shop/np");
	assert_roundtrip(o);
	k8s_object_free(o);
}

static void test_service_load_balancer(void **state)
{
	struct k8s_object *o = decode_ok(
		K8S_SERVICE,
		"{'metadata':{'name':'lb','namespace':'default','resourceVersion':'7'},"
		" 'spec':{'type':'LoadBalancer','clusterIP':'198.18.100.30','clusterIPs':['198.18.100.30'],"
		"  'externalTrafficPolicy':'Local','healthCheckNodePort':32456,"
		"  'externalIPs':['203.0.113.10','2001:db8::10','203.0.113.11'],"
		"  'loadBalancerSourceRanges':['198.18.0.0/15',' 203.0.113.77/24 ','2001:db8::/32','0.0.0.0/0'],"
		"  'allocateLoadBalancerNodePorts':true,"
		"  'ports':[{'name':'http','protocol':'TCP','port':80,'targetPort':8080,'nodePort':30001}]},"
		" 'status':{'loadBalancer':{'ingress':["
		"   {'ip':'203.0.113.50','ipMode':'Proxy','ports':[{'port':80,'protocol':'TCP'}]},"
		"   {'hostname':'lb-1234.elb.example.com'},"
		"   {'ip':'2001:db8::50','ipMode':'VIP'},"
		"   {'ip':'203.0.113.51'}]}}}");
	const struct k8s_service *s = &o->svc;

	assert_int_equal(s->type, SVC_LOAD_BALANCER);
	assert_true(s->external_local);
	assert_int_equal(s->health_check_node_port, 32456);
	/* IPv6 entries skipped, order kept. */
	assert_int_equal(s->n_external_ips, 2);
	assert_ip(s->external_ips[0], "203.0.113.10");
	assert_ip(s->external_ips[1], "203.0.113.11");
	/* Host bits masked, whitespace trimmed, IPv6 skipped. */
	assert_int_equal(s->n_source_ranges, 3);
	assert_ip(s->source_ranges[0].addr, "198.18.0.0");
	assert_int_equal(s->source_ranges[0].len, 15);
	assert_ip(s->source_ranges[1].addr, "203.0.113.0");
	assert_int_equal(s->source_ranges[1].len, 24);
	assert_ip(s->source_ranges[2].addr, "0.0.0.0");
	assert_int_equal(s->source_ranges[2].len, 0);
	/* Hostname-only and IPv6 ingress entries carry no IPv4 VIP. */
	assert_int_equal(s->n_lb_ingress, 2);
	assert_ip(s->lb_ingress[0].ip, "203.0.113.50");
	assert_true(s->lb_ingress[0].ip_mode_proxy);
	assert_ip(s->lb_ingress[1].ip, "203.0.113.51");
	assert_false(s->lb_ingress[1].ip_mode_proxy);
	assert_roundtrip(o);
	k8s_object_free(o);
}

static void test_service_external_name(void **state)
{
	struct k8s_object *o = decode_ok(
		K8S_SERVICE, "{'metadata':{'name':'db','namespace':'default'},"
			     " 'spec':{'type':'ExternalName','externalName':'db.example.com',"
			     "  'sessionAffinity':'None'}}");

	assert_int_equal(o->svc.type, SVC_EXTERNAL_NAME);
	assert_int_equal(o->svc.n_ports, 0);
	assert_null(o->svc.ports);
	assert_int_equal(o->svc.n_cluster_ips, 0);
	assert_roundtrip(o);
	k8s_object_free(o);
}

static void test_service_headless(void **state)
{
	static const char *const texts[] = {
		("{'metadata':{'name':'h','namespace':'d'},'spec':{'clusterIP':'None','clusterIPs':['None'],"
		 " 'ports':[{'port':5432}]}}"),
		/* Old objects without clusterIPs. */
		"{'metadata':{'name':'h','namespace':'d'},'spec':{'clusterIP':'None','ports':[{'port':5432}]}}",
		/* No ports at all is allowed for headless services. */
		"{'metadata':{'name':'h','namespace':'d'},'spec':{'clusterIP':'None'}}",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct k8s_object *o = decode_ok(K8S_SERVICE, texts[i]);

		assert_true(o->svc.headless);
		assert_int_equal(o->svc.n_cluster_ips, 0);
		assert_roundtrip(o);
		k8s_object_free(o);
	}
}

static void test_service_dual_stack(void **state)
{
	struct k8s_object *o;

	/* IPv6 primary: clusterIP is the IPv6 one; clusterIPs wins and its IPv4 is kept. */
	o = decode_ok(K8S_SERVICE,
		      "{'metadata':{'name':'ds','namespace':'d'},"
		      " 'spec':{'clusterIP':'fd00:10:96::a','clusterIPs':['fd00:10:96::a','198.18.100.40'],"
		      "  'ipFamilies':['IPv6','IPv4'],'ipFamilyPolicy':'PreferDualStack','ports':[{'port':80}]}}");
	assert_int_equal(o->svc.n_cluster_ips, 1);
	assert_ip(o->svc.cluster_ips[0], "198.18.100.40");
	assert_roundtrip(o);
	k8s_object_free(o);

	/* IPv6 only: nothing for berth, but not headless either. */
	o = decode_ok(K8S_SERVICE, "{'metadata':{'name':'v6','namespace':'d'},"
				   " 'spec':{'clusterIP':'fd00::1','ports':[{'port':80}]}}");
	assert_int_equal(o->svc.n_cluster_ips, 0);
	assert_null(o->svc.cluster_ips);
	assert_false(o->svc.headless);
	k8s_object_free(o);

	/* clusterIP alone still works. */
	o = decode_ok(K8S_SERVICE, "{'metadata':{'name':'v4','namespace':'d'},"
				   " 'spec':{'clusterIP':'198.18.100.41','clusterIPs':[],'ports':[{'port':80}]}}");
	assert_int_equal(o->svc.n_cluster_ips, 1);
	assert_ip(o->svc.cluster_ips[0], "198.18.100.41");
	k8s_object_free(o);
}

static void test_service_affinity(void **state)
{
	struct k8s_object *o;

	o = decode_ok(K8S_SERVICE, "{'metadata':{'name':'a','namespace':'d'},"
				   " 'spec':{'sessionAffinity':'ClientIP','ports':[{'port':80}]}}");
	assert_true(o->svc.affinity_client_ip);
	assert_int_equal(o->svc.affinity_timeout_s, 10800);
	assert_roundtrip(o);
	k8s_object_free(o);

	o = decode_ok(K8S_SERVICE,
		      "{'metadata':{'name':'a','namespace':'d'},"
		      " 'spec':{'sessionAffinity':'ClientIP','ports':[{'port':80}],"
		      "  'sessionAffinityConfig':{'clientIP':{'timeoutSeconds':60}}}}");
	assert_true(o->svc.affinity_client_ip);
	assert_int_equal(o->svc.affinity_timeout_s, 60);
	assert_roundtrip(o);
	k8s_object_free(o);

	/* The bounds themselves are valid. */
	o = decode_ok(K8S_SERVICE,
		      "{'metadata':{'name':'a','namespace':'d'},"
		      " 'spec':{'sessionAffinity':'ClientIP','ports':[{'port':80}],"
		      "  'sessionAffinityConfig':{'clientIP':{'timeoutSeconds':86400}}}}");
	assert_int_equal(o->svc.affinity_timeout_s, 86400);
	k8s_object_free(o);

	/* A config without ClientIP affinity is ignored (the API server clears it). */
	o = decode_ok(K8S_SERVICE,
		      "{'metadata':{'name':'a','namespace':'d'},"
		      " 'spec':{'sessionAffinity':'None','ports':[{'port':80}],"
		      "  'sessionAffinityConfig':{'clientIP':{'timeoutSeconds':60}}}}");
	assert_false(o->svc.affinity_client_ip);
	assert_int_equal(o->svc.affinity_timeout_s, 10800);
	k8s_object_free(o);
}

/* ------------------------------------------------------- EndpointSlices */

static const char eps_web[] =
	"{'apiVersion':'discovery.k8s.io/v1','kind':'EndpointSlice',"
	" 'metadata':{'name':'web-abc12','namespace':'default','uid':'u-1','resourceVersion':'99',"
	"  'generateName':'web-','labels':{'kubernetes.io/service-name':'web',"
	"   'endpointslice.kubernetes.io/managed-by':'endpointslice-controller.k8s.io'},"
	"  'ownerReferences':[{'kind':'Service','name':'web'}]},"
	" 'addressType':'IPv4',"
	" 'ports':[{'name':'http','protocol':'TCP','port':8080},{'name':'https','protocol':'TCP','port':8443},"
	"          {'name':'','protocol':'UDP','port':53,'appProtocol':'dns'}],"
	" 'endpoints':["
	"  {'addresses':['198.18.1.10']},"
	"  {'addresses':['198.18.1.11'],'conditions':{'ready':true,'serving':true,'terminating':false},"
	"   'nodeName':'node-a','zone':'zone-1','hostname':'web-0',"
	"   'targetRef':{'kind':'Pod','namespace':'default','name':'web-7d9f8b6c5d-x2kq9','uid':'p-1'},"
	"   'hints':{'forZones':[{'name':'zone-1'},{'name':'zone-2'}],'forNodes':[{'name':'node-a'}]}},"
	"  {'addresses':['198.18.1.12'],'conditions':{'ready':false,'serving':true,'terminating':true},"
	"   'nodeName':'node-b.example.com'},"
	"  {'addresses':['198.18.1.13'],'conditions':{'ready':false},'hints':{'forZones':[]}},"
	"  {'addresses':['198.18.1.14','198.18.1.15'],'conditions':{'serving':false,'terminating':null},"
	"   'targetRef':{'kind':'Node','name':'node-c'}},"
	"  {'addresses':['198.18.1.16'],'conditions':{},'hints':{'forNodes':null,'forZones':[{'name':''}]}}]}";

static void test_endpointslice(void **state)
{
	struct k8s_object *o = decode_ok(K8S_ENDPOINTSLICE, eps_web);
	const struct k8s_endpointslice *e = &o->eps;
	const struct eps_endpoint *ep = e->endpoints;

	assert_key(o, "default/web-abc12");
	assert_string_equal(e->service, "web");
	assert_true(e->ipv4);
	assert_int_equal(e->n_ports, 3);
	assert_string_equal(e->ports[0].name, "http");
	assert_int_equal(e->ports[0].port, 8080);
	assert_int_equal(e->ports[1].port, 8443);
	assert_string_equal(e->ports[2].name, "");
	assert_int_equal(e->ports[2].proto, L4_UDP);

	assert_int_equal(e->n_endpoints, 6);
	/* No conditions at all: ready and serving, not terminating. */
	assert_int_equal(ep[0].n_addrs, 1);
	assert_ip(ep[0].addrs[0], "198.18.1.10");
	assert_true(ep[0].ready);
	assert_true(ep[0].serving);
	assert_false(ep[0].terminating);
	assert_null(ep[0].node_name);
	assert_null(ep[0].zone);
	assert_null(ep[0].target_pod);
	/* Everything present. */
	assert_true(ep[1].ready);
	assert_string_equal(ep[1].node_name, "node-a");
	assert_string_equal(ep[1].zone, "zone-1");
	assert_string_equal(ep[1].target_pod, "web-7d9f8b6c5d-x2kq9");
	/* Topology hints, in API order. */
	assert_int_equal(ep[1].n_zone_hints, 2);
	assert_string_equal(ep[1].zone_hints[0], "zone-1");
	assert_string_equal(ep[1].zone_hints[1], "zone-2");
	assert_int_equal(ep[1].n_node_hints, 1);
	assert_string_equal(ep[1].node_hints[0], "node-a");
	assert_int_equal(ep[0].n_zone_hints, 0);
	assert_null(ep[0].zone_hints);
	assert_int_equal(ep[0].n_node_hints, 0);
	assert_null(ep[0].node_hints);
	/* Terminating but still serving: the fallback kube-proxy uses. */
	assert_false(ep[2].ready);
	assert_true(ep[2].serving);
	assert_true(ep[2].terminating);
	assert_string_equal(ep[2].node_name, "node-b.example.com");
	/* serving absent defers to ready. */
	assert_false(ep[3].ready);
	assert_false(ep[3].serving);
	assert_false(ep[3].terminating);
	/* An empty hint list is no hint list. */
	assert_int_equal(ep[3].n_zone_hints, 0);
	assert_null(ep[3].zone_hints);
	/* Several addresses; a targetRef to something else than a Pod names no pod. */
	assert_int_equal(ep[4].n_addrs, 2);
	assert_ip(ep[4].addrs[1], "198.18.1.15");
	assert_true(ep[4].ready);
	assert_false(ep[4].serving);
	assert_false(ep[4].terminating);
	assert_null(ep[4].target_pod);
	/* Empty conditions object: the defaults. */
	assert_true(ep[5].ready);
	assert_true(ep[5].serving);
	assert_false(ep[5].terminating);
	/* "" is a valid label value, so a valid zone hint (it matches no known zone). */
	assert_int_equal(ep[5].n_zone_hints, 1);
	assert_string_equal(ep[5].zone_hints[0], "");
	assert_int_equal(ep[5].n_node_hints, 0);
	assert_roundtrip(o);
	k8s_object_free(o);
}

static void test_endpointslice_all_ports_and_orphans(void **state)
{
	/* A slice without the service label (someone else's), a port with no number. */
	struct k8s_object *o = decode_ok(
		K8S_ENDPOINTSLICE,
		"{'metadata':{'name':'custom','namespace':'d','labels':{'app':'x'}},'addressType':'IPv4',"
		" 'ports':[{'protocol':'UDP'},{'name':'all','port':null}],"
		" 'endpoints':null}");
	json_t *v;

	assert_null(o->eps.service);
	assert_int_equal(o->eps.n_ports, 2);
	assert_int_equal(o->eps.ports[0].port, 0);
	assert_int_equal(o->eps.ports[0].proto, L4_UDP);
	assert_string_equal(o->eps.ports[0].name, "");
	assert_int_equal(o->eps.ports[1].port, 0);
	assert_int_equal(o->eps.n_endpoints, 0);
	assert_null(o->eps.endpoints);
	/* "All ports" is encoded by leaving port out. */
	v = k8s_endpointslice_to_json(&o->eps);
	assert_null(json_object_get(json_array_get(json_object_get(v, "ports"), 0), "port"));
	json_decref(v);
	assert_roundtrip(o);
	k8s_object_free(o);

	/* Empty service label = not a service's. */
	o = decode_ok(K8S_ENDPOINTSLICE,
		      "{'metadata':{'name':'e','namespace':'d','labels':{'kubernetes.io/service-name':''}},"
		      " 'addressType':'IPv4','endpoints':[]}");
	assert_null(o->eps.service);
	k8s_object_free(o);
}

static void test_endpointslice_non_ipv4(void **state)
{
	static const char *const texts[] = {
		("{'metadata':{'name':'web-v6','namespace':'default','labels':{'kubernetes.io/service-name':'web'}},"
		 " 'addressType':'IPv6','ports':[{'name':'http','port':8080,'protocol':'TCP'}],"
		 " 'endpoints':[{'addresses':['fd00::10'],'conditions':{'ready':true}},"
		 "              {'addresses':['fd00::11'],'nodeName':'node-a'}]}"),
		("{'metadata':{'name':'ext','namespace':'default'},'addressType':'FQDN',"
		 " 'endpoints':[{'addresses':['db.example.com']}]}"),
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct k8s_object *o = decode_ok(K8S_ENDPOINTSLICE, texts[i]);

		assert_false(o->eps.ipv4);
		assert_int_equal(o->eps.n_endpoints, 0);
		assert_null(o->eps.endpoints);
		assert_roundtrip(o);
		k8s_object_free(o);
	}
}

/* ----------------------------------------------------------- Pods, Nodes */

static void test_pod(void **state)
{
	struct k8s_object *o;

	o = decode_ok(K8S_POD,
		      "{'apiVersion':'v1','kind':'Pod',"
		      " 'metadata':{'name':'web-7d9f8b6c5d-x2kq9','namespace':'default','uid':'p-1'},"
		      " 'spec':{'nodeName':'node-a','containers':[{'name':'web','image':'nginx'}]},"
		      " 'status':{'phase':'Running','podIP':'198.18.1.11',"
		      "  'podIPs':[{'ip':'198.18.1.11'},{'ip':'fd00::11'}],'hostIP':'198.18.0.2'}}");
	assert_key(o, "default/web-7d9f8b6c5d-x2kq9");
	assert_string_equal(o->pod.node_name, "node-a");
	assert_false(o->pod.host_network);
	assert_string_equal(o->pod.phase, "Running");
	assert_int_equal(o->pod.n_ips, 1);
	assert_ip(o->pod.ips[0], "198.18.1.11");
	k8s_object_free(o);

	/* podIP only (older API servers), host network. */
	o = decode_ok(K8S_POD, "{'metadata':{'name':'kp','namespace':'kube-system'},"
			       " 'spec':{'nodeName':'node-a','hostNetwork':true},"
			       " 'status':{'phase':'Running','podIP':'198.18.0.2'}}");
	assert_true(o->pod.host_network);
	assert_int_equal(o->pod.n_ips, 1);
	assert_ip(o->pod.ips[0], "198.18.0.2");
	k8s_object_free(o);

	/* Just created: not scheduled, no status. */
	o = decode_ok(K8S_POD, "{'metadata':{'name':'new','namespace':'d'},'spec':{}}");
	assert_null(o->pod.node_name);
	assert_null(o->pod.phase);
	assert_int_equal(o->pod.n_ips, 0);
	assert_null(o->pod.ips);
	k8s_object_free(o);

	/* IPv6-only pod: no addresses for berth. */
	o = decode_ok(K8S_POD, "{'metadata':{'name':'v6','namespace':'d'},"
			       " 'status':{'phase':'Pending','podIPs':[{'ip':'fd00::1'}]}}");
	assert_int_equal(o->pod.n_ips, 0);
	assert_null(o->pod.ips);
	k8s_object_free(o);
}

static void test_node(void **state)
{
	struct k8s_object *o = decode_ok(
		K8S_NODE,
		"{'apiVersion':'v1','kind':'Node',"
		" 'metadata':{'name':'ip-198-18-0-2.ec2.internal','uid':'n-1','resourceVersion':'5',"
		"  'labels':{'kubernetes.io/hostname':'ip-198-18-0-2','topology.kubernetes.io/zone':'us-east-1a'}},"
		" 'spec':{'podCIDR':'198.19.0.0/24','providerID':'aws:///us-east-1a/i-0123'},"
		" 'status':{'addresses':["
		"  {'type':'InternalIP','address':'198.18.0.2'},"
		"  {'type':'InternalIP','address':'fd00::2'},"
		"  {'type':'ExternalIP','address':'203.0.113.2'},"
		"  {'type':'InternalIP','address':'198.18.0.3'},"
		"  {'type':'Hostname','address':'ip-198-18-0-2.ec2.internal'},"
		"  {'type':'InternalDNS','address':'ip-198-18-0-2.ec2.internal'}],"
		"  'conditions':[{'type':'Ready','status':'True'}]}}");

	/* Cluster-scoped: the key is the bare name. */
	assert_key(o, "ip-198-18-0-2.ec2.internal");
	assert_string_equal(o->node.meta.ns, "");
	assert_string_equal(o->node.zone, "us-east-1a");
	assert_int_equal(o->node.n_internal_ips, 2);
	assert_ip(o->node.internal_ips[0], "198.18.0.2");
	assert_ip(o->node.internal_ips[1], "198.18.0.3");
	assert_int_equal(o->node.n_external_ips, 1);
	assert_ip(o->node.external_ips[0], "203.0.113.2");
	k8s_object_free(o);

	/* A node still registering: no status, no labels. */
	o = decode_ok(K8S_NODE, "{'metadata':{'name':'n1'}}");
	assert_null(o->node.zone);
	assert_int_equal(o->node.n_internal_ips, 0);
	assert_null(o->node.internal_ips);
	assert_null(o->node.external_ips);
	k8s_object_free(o);
}

/* ------------------------------------------------------------ malformed */

#define SVC(spec) "{'metadata':{'name':'web','namespace':'default'},'spec':{" spec "}}"
#define SVCP(port) SVC("'ports':[{'port':80}," port "]")
#define EPS(rest)                                                                           \
	"{'metadata':{'name':'web-1','namespace':'default'},'addressType':'IPv4'" rest "}"
#define EP(ep) EPS(",'endpoints':[" ep "]")
#define POD(rest) "{'metadata':{'name':'p','namespace':'default'}" rest "}"
#define NODE(rest) "{'metadata':{'name':'n1'}" rest "}"

static const struct {
	enum k8s_kind kind;
	const char *text;
	const char *want;
} malformed[] = {
	/* metadata, for every kind */
	{ K8S_SERVICE, "[]", "Service is an array, not an object" },
	{ K8S_SERVICE, "{'spec':{}}", "metadata is missing" },
	{ K8S_SERVICE, "{'metadata':5}", "metadata is a number, not an object" },
	{ K8S_SERVICE, "{'metadata':{'namespace':'d'}}", "metadata.name is missing" },
	{ K8S_SERVICE, "{'metadata':{'name':7,'namespace':'d'}}", "metadata.name is a number, not a string" },
	{ K8S_SERVICE, "{'metadata':{'name':'Web','namespace':'d'}}", "metadata.name \"Web\" is not a DNS subdomain" },
	{ K8S_SERVICE, "{'metadata':{'name':'a/b','namespace':'d'}}", "is not a DNS subdomain" },
	{ K8S_SERVICE, "{'metadata':{'name':'','namespace':'d'}}", "is not a DNS subdomain" },
	{ K8S_SERVICE, "{'metadata':{'name':'a..b','namespace':'d'}}", "is not a DNS subdomain" },
	{ K8S_SERVICE, "{'metadata':{'name':'-a','namespace':'d'}}", "is not a DNS subdomain" },
	{ K8S_SERVICE, "{'metadata':{'name':'a\\u0000b','namespace':'d'}}", "metadata.name contains a NUL byte" },
	{ K8S_SERVICE, "{'metadata':{'name':'web'},'spec':{}}", "web: metadata.namespace is missing" },
	{ K8S_SERVICE, "{'metadata':{'name':'web','namespace':'a.b'},'spec':{}}", "web: metadata.namespace \"a.b\" is not a DNS label" },
	{ K8S_SERVICE, "{'metadata':{'name':'web','namespace':[]},'spec':{}}", "metadata.namespace is an array, not a string" },
	{ K8S_SERVICE, "{'metadata':{'name':'web','namespace':'d','uid':5},'spec':{}}", "d/web: metadata.uid is a number" },
	{ K8S_SERVICE, "{'metadata':{'name':'web','namespace':'d','resourceVersion':1},'spec':{}}", "metadata.resourceVersion is a number" },
	{ K8S_ENDPOINTSLICE, "{'metadata':{'name':'e'},'addressType':'IPv4'}", "e: metadata.namespace is missing" },
	{ K8S_POD, "{'metadata':{'name':'p'}}", "p: metadata.namespace is missing" },
	{ K8S_NODE, "{'metadata':{}}", "metadata.name is missing" },
	{ K8S_NODE, "{'metadata':{'name':'N1'}}", "is not a DNS subdomain" },
	{ K8S_NODE, "5", "Node is a number, not an object" },

	/* Service spec */
	{ K8S_SERVICE, "{'metadata':{'name':'web','namespace':'default'}}", "default/web: spec is missing" },
	{ K8S_SERVICE, "{'metadata':{'name':'web','namespace':'default'},'spec':[]}", "default/web: spec is an array, not an object" },
	{ K8S_SERVICE, SVC("'type':'Foo'"), "default/web: spec.type \"Foo\" is not ClusterIP, NodePort, LoadBalancer or ExternalName" },
	{ K8S_SERVICE, SVC("'type':'clusterip'"), "spec.type \"clusterip\" is not" },
	{ K8S_SERVICE, SVC("'type':5"), "spec.type is a number, not a string" },
	{ K8S_SERVICE, SVC("'ports':{}"), "spec.ports is an object, not an array" },
	{ K8S_SERVICE, SVC("'ports':[5]"), "spec.ports[0] is a number, not an object" },
	{ K8S_SERVICE, SVC("'ports':[{}]"), "default/web: spec.ports[0].port is missing" },
	{ K8S_SERVICE, SVCP("{'port':0}"), "spec.ports[1].port 0 is out of range 1..65535" },
	{ K8S_SERVICE, SVCP("{'port':65536}"), "spec.ports[1].port 65536 is out of range 1..65535" },
	{ K8S_SERVICE, SVCP("{'port':-1}"), "spec.ports[1].port -1 is out of range" },
	{ K8S_SERVICE, SVCP("{'port':'80'}"), "spec.ports[1].port is a string, not an integer" },
	{ K8S_SERVICE, SVCP("{'port':80.5}"), "spec.ports[1].port is a number, not an integer" },
	{ K8S_SERVICE, SVCP("{'port':81,'protocol':'tcp'}"), "spec.ports[1].protocol \"tcp\" is not TCP, UDP or SCTP" },
	{ K8S_SERVICE, SVCP("{'port':81,'protocol':6}"), "spec.ports[1].protocol is a number, not a string" },
	{ K8S_SERVICE, SVCP("{'port':81,'protocol':'TCPTCPTCPTCPTCPTCPTCPTCPTCPTCPTCP'}"), "spec.ports[1].protocol is longer than 32 bytes" },
	{ K8S_SERVICE, SVCP("{'port':81,'nodePort':70000}"), "spec.ports[1].nodePort 70000 is out of range 0..65535" },
	{ K8S_SERVICE, SVCP("{'port':81,'nodePort':-30000}"), "spec.ports[1].nodePort -30000 is out of range" },
	{ K8S_SERVICE, SVCP("{'port':81,'nodePort':'30000'}"), "spec.ports[1].nodePort is a string, not an integer" },
	{ K8S_SERVICE, SVCP("{'port':81,'targetPort':65536}"), "spec.ports[1].targetPort 65536 is out of range" },
	{ K8S_SERVICE, SVCP("{'port':81,'targetPort':-1}"), "spec.ports[1].targetPort -1 is out of range" },
	{ K8S_SERVICE, SVCP("{'port':81,'targetPort':true}"), "spec.ports[1].targetPort is a boolean, not an integer or a string" },
	{ K8S_SERVICE, SVCP("{'port':81,'targetPort':'8080'}"), "spec.ports[1].targetPort \"8080\" is not a port name" },
	{ K8S_SERVICE, SVCP("{'port':81,'targetPort':'a--b'}"), "is not a port name" },
	{ K8S_SERVICE, SVCP("{'port':81,'targetPort':'HTTP'}"), "is not a port name" },
	{ K8S_SERVICE, SVCP("{'port':81,'targetPort':'-http'}"), "is not a port name" },
	{ K8S_SERVICE, SVCP("{'port':81,'targetPort':'sixteen-chars-xx'}"), "spec.ports[1].targetPort is longer than 15 bytes" },
	{ K8S_SERVICE, SVCP("{'port':81,'name':'HTTP'}"), "spec.ports[1].name \"HTTP\" is not a DNS label" },
	{ K8S_SERVICE, SVCP("{'port':81,'name':5}"), "spec.ports[1].name is a number, not a string" },
	{ K8S_SERVICE, SVC("'clusterIP':'198.18.0.256'"), "default/web: spec.clusterIP \"198.18.0.256\" is not an IP address" },
	{ K8S_SERVICE, SVC("'clusterIP':'198.18.0.1/32'"), "spec.clusterIP \"198.18.0.1/32\" is not an IP address" },
	{ K8S_SERVICE, SVC("'clusterIP':'010.0.0.1'"), "is not an IP address" },
	{ K8S_SERVICE, SVC("'clusterIP':' 10.0.0.1'"), "is not an IP address" },
	{ K8S_SERVICE, SVC("'clusterIP':5"), "spec.clusterIP is a number, not a string" },
	{ K8S_SERVICE, SVC("'clusterIPs':'10.0.0.1'"), "spec.clusterIPs is a string, not an array" },
	{ K8S_SERVICE, SVC("'clusterIPs':['None','10.0.0.1']"), "spec.clusterIPs: \"None\" must be the only entry" },
	{ K8S_SERVICE, SVC("'clusterIPs':['10.0.0.1',5]"), "spec.clusterIPs[1] is a number, not a string" },
	{ K8S_SERVICE, SVC("'clusterIPs':['10.0.0.1','x']"), "spec.clusterIPs[1] \"x\" is not an IP address" },
	{ K8S_SERVICE, SVC("'clusterIPs':['']"), "spec.clusterIPs[0] \"\" is not an IP address" },
	{ K8S_SERVICE, SVC("'externalIPs':['203.0.113.1','bad']"), "spec.externalIPs[1] \"bad\" is not an IP address" },
	{ K8S_SERVICE, SVC("'externalIPs':[null]"), "spec.externalIPs[0] is null, not a string" },
	{ K8S_SERVICE, SVC("'externalIPs':{}"), "spec.externalIPs is an object, not an array" },
	{ K8S_SERVICE, SVC("'loadBalancerSourceRanges':['10.0.0.0']"), "spec.loadBalancerSourceRanges[0] \"10.0.0.0\" is not a CIDR" },
	{ K8S_SERVICE, SVC("'loadBalancerSourceRanges':['10.0.0.0/8','10.0.0.0/33']"), "spec.loadBalancerSourceRanges[1] \"10.0.0.0/33\" is not a CIDR" },
	{ K8S_SERVICE, SVC("'loadBalancerSourceRanges':['bogus/8']"), "is not a CIDR" },
	{ K8S_SERVICE, SVC("'loadBalancerSourceRanges':['10.0.0.0/']"), "is not a CIDR" },
	{ K8S_SERVICE, SVC("'loadBalancerSourceRanges':['2001:db8::/129']"), "is not a CIDR" },
	{ K8S_SERVICE, SVC("'loadBalancerSourceRanges':['10.0.0.0/8x']"), "is not a CIDR" },
	{ K8S_SERVICE, SVC("'loadBalancerSourceRanges':[8]"), "spec.loadBalancerSourceRanges[0] is a number, not a string" },
	{ K8S_SERVICE, SVC("'loadBalancerSourceRanges':'10.0.0.0/8'"), "spec.loadBalancerSourceRanges is a string, not an array" },
	{ K8S_SERVICE, SVC("'sessionAffinity':'Sticky'"), "spec.sessionAffinity \"Sticky\" is not None or ClientIP" },
	{ K8S_SERVICE, SVC("'sessionAffinity':'ClientIP','sessionAffinityConfig':{'clientIP':{'timeoutSeconds':0}}"), "spec.sessionAffinityConfig.clientIP.timeoutSeconds 0 is out of range 1..86400" },
	{ K8S_SERVICE, SVC("'sessionAffinity':'ClientIP','sessionAffinityConfig':{'clientIP':{'timeoutSeconds':86401}}"), "timeoutSeconds 86401 is out of range 1..86400" },
	{ K8S_SERVICE, SVC("'sessionAffinity':'ClientIP','sessionAffinityConfig':{'clientIP':{'timeoutSeconds':'60'}}"), "timeoutSeconds is a string, not an integer" },
	{ K8S_SERVICE, SVC("'sessionAffinity':'ClientIP','sessionAffinityConfig':{'clientIP':[]}"), "spec.sessionAffinityConfig.clientIP is an array, not an object" },
	{ K8S_SERVICE, SVC("'sessionAffinity':'ClientIP','sessionAffinityConfig':true"), "spec.sessionAffinityConfig is a boolean, not an object" },
	{ K8S_SERVICE, SVC("'externalTrafficPolicy':'OnlyLocal'"), "spec.externalTrafficPolicy \"OnlyLocal\" is not Cluster or Local" },
	{ K8S_SERVICE, SVC("'internalTrafficPolicy':'local'"), "spec.internalTrafficPolicy \"local\" is not Cluster or Local" },
	{ K8S_SERVICE, SVC("'healthCheckNodePort':65536"), "spec.healthCheckNodePort 65536 is out of range" },
	{ K8S_SERVICE, SVC("'healthCheckNodePort':'x'"), "spec.healthCheckNodePort is a string, not an integer" },
	{ K8S_SERVICE, "{'metadata':{'name':'web','namespace':'default'},'spec':{},'status':5}", "default/web: status is a number, not an object" },
	{ K8S_SERVICE, "{'metadata':{'name':'web','namespace':'default'},'spec':{},'status':{'loadBalancer':[]}}", "status.loadBalancer is an array, not an object" },
	{ K8S_SERVICE, "{'metadata':{'name':'web','namespace':'default'},'spec':{},'status':{'loadBalancer':{'ingress':{}}}}", "status.loadBalancer.ingress is an object, not an array" },
	{ K8S_SERVICE, "{'metadata':{'name':'web','namespace':'default'},'spec':{},'status':{'loadBalancer':{'ingress':[5]}}}", "status.loadBalancer.ingress[0] is a number, not an object" },
	{ K8S_SERVICE, "{'metadata':{'name':'web','namespace':'default'},'spec':{},'status':{'loadBalancer':{'ingress':[{'ip':'1.2.3'}]}}}", "status.loadBalancer.ingress[0].ip \"1.2.3\" is not an IP address" },
	{ K8S_SERVICE, "{'metadata':{'name':'web','namespace':'default'},'spec':{},'status':{'loadBalancer':{'ingress':[{'ip':'1.2.3.4','ipMode':'Direct'}]}}}", "status.loadBalancer.ingress[0].ipMode \"Direct\" is not VIP or Proxy" },
	{ K8S_SERVICE, "{'metadata':{'name':'web','namespace':'default'},'spec':{},'status':{'loadBalancer':{'ingress':[{'ip':7}]}}}", "status.loadBalancer.ingress[0].ip is a number, not a string" },

	/* EndpointSlice */
	{ K8S_ENDPOINTSLICE, "{'metadata':{'name':'web-1','namespace':'default'}}", "default/web-1: addressType is missing" },
	{ K8S_ENDPOINTSLICE, "{'metadata':{'name':'web-1','namespace':'default'},'addressType':'IPv5'}", "addressType \"IPv5\" is not IPv4, IPv6 or FQDN" },
	{ K8S_ENDPOINTSLICE, "{'metadata':{'name':'web-1','namespace':'default'},'addressType':4}", "addressType is a number, not a string" },
	{ K8S_ENDPOINTSLICE, "{'metadata':{'name':'web-1','namespace':'default','labels':[]},'addressType':'IPv4'}", "metadata.labels is an array, not an object" },
	{ K8S_ENDPOINTSLICE, "{'metadata':{'name':'web-1','namespace':'default','labels':{'kubernetes.io/service-name':5}},'addressType':'IPv4'}", "metadata.labels[\"kubernetes.io/service-name\"] is a number, not a string" },
	{ K8S_ENDPOINTSLICE, "{'metadata':{'name':'web-1','namespace':'default','labels':{'kubernetes.io/service-name':'a b'}},'addressType':'IPv4'}", "metadata.labels[\"kubernetes.io/service-name\"] \"a b\" is not a label value" },
	{ K8S_ENDPOINTSLICE, EPS(",'ports':5"), "ports is a number, not an array" },
	{ K8S_ENDPOINTSLICE, EPS(",'ports':[[]]"), "ports[0] is an array, not an object" },
	{ K8S_ENDPOINTSLICE, EPS(",'ports':[{'port':0}]"), "ports[0].port 0 is out of range 1..65535" },
	{ K8S_ENDPOINTSLICE, EPS(",'ports':[{'port':65536}]"), "ports[0].port 65536 is out of range 1..65535" },
	{ K8S_ENDPOINTSLICE, EPS(",'ports':[{'port':80,'protocol':'ICMP'}]"), "ports[0].protocol \"ICMP\" is not TCP, UDP or SCTP" },
	{ K8S_ENDPOINTSLICE, EPS(",'ports':[{'port':80,'name':'Http'}]"), "ports[0].name \"Http\" is not a DNS label" },
	{ K8S_ENDPOINTSLICE, EPS(",'endpoints':{}"), "endpoints is an object, not an array" },
	{ K8S_ENDPOINTSLICE, EP("'198.18.1.1'"), "endpoints[0] is a string, not an object" },
	{ K8S_ENDPOINTSLICE, EP("{}"), "default/web-1: endpoints[0].addresses is missing or empty" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1']},{'addresses':[]}"), "endpoints[1].addresses is missing or empty" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':'198.18.1.1'}"), "endpoints[0].addresses is a string, not an array" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['fd00::1']}"), "endpoints[0].addresses[0] \"fd00::1\" is not an IPv4 address" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1','198.18.1.300']}"), "endpoints[0].addresses[1] \"198.18.1.300\" is not an IPv4 address" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':[5]}"), "endpoints[0].addresses[0] is a number, not a string" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'conditions':5}"), "endpoints[0].conditions is a number, not an object" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'conditions':{'ready':'true'}}"), "endpoints[0].conditions.ready is a string, not a boolean" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'conditions':{'serving':1}}"), "endpoints[0].conditions.serving is a number, not a boolean" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'conditions':{'terminating':[]}}"), "endpoints[0].conditions.terminating is an array, not a boolean" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'nodeName':5}"), "endpoints[0].nodeName is a number, not a string" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'nodeName':'Node_1'}"), "endpoints[0].nodeName \"Node_1\" is not a DNS subdomain" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'zone':'us east'}"), "endpoints[0].zone \"us east\" is not a label value" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'hints':[]}"), "default/web-1: endpoints[0].hints is an array, not an object" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'hints':{'forZones':{'name':'z'}}}"), "endpoints[0].hints.forZones is an object, not an array" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'hints':{'forZones':['z']}}"), "endpoints[0].hints.forZones[0] is a string, not an object" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'hints':{'forZones':[{}]}}"), "endpoints[0].hints.forZones[0].name is missing" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'hints':{'forZones':[{'name':5}]}}"), "endpoints[0].hints.forZones[0].name is a number, not a string" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'hints':{'forZones':[{'name':'z1'},{'name':'us east'}]}}"), "endpoints[0].hints.forZones[1].name \"us east\" is not a label value" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'hints':{'forZones':[{'name':'z1'},{'name':'z1'}]}}"), "endpoints[0].hints.forZones[1].name \"z1\" is a duplicate" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'hints':{'forZones':[{'name':'z\\u0000'}]}}"), "endpoints[0].hints.forZones[0].name contains a NUL byte" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'hints':{'forNodes':'node-a'}}"), "endpoints[0].hints.forNodes is a string, not an array" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'hints':{'forNodes':[null]}}"), "endpoints[0].hints.forNodes[0] is null, not an object" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'hints':{'forNodes':[{'name':''}]}}"), "endpoints[0].hints.forNodes[0].name \"\" is not a DNS subdomain" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'hints':{'forNodes':[{'name':'Node_A'}]}}"), "endpoints[0].hints.forNodes[0].name \"Node_A\" is not a DNS subdomain" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'hints':{'forNodes':[{'name':'a'},{'name':'b'},{'name':'a'}]}}"), "endpoints[0].hints.forNodes[2].name \"a\" is a duplicate" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1']},{'addresses':['198.18.1.2'],'hints':{'forNodes':[{'name':true}]}}"), "endpoints[1].hints.forNodes[0].name is a boolean, not a string" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'targetRef':'pod'}"), "endpoints[0].targetRef is a string, not an object" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'targetRef':{'kind':'Pod','name':5}}"), "endpoints[0].targetRef.name is a number, not a string" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'targetRef':{'kind':1,'name':'p'}}"), "endpoints[0].targetRef.kind is a number, not a string" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'targetRef':{'kind':'Pod','name':'P!'}}"), "endpoints[0].targetRef.name \"P!\" is not a DNS subdomain" },
	{ K8S_ENDPOINTSLICE, EP("{'addresses':['198.18.1.1'],'targetRef':{'kind':'Gateway','name':true}}"), "endpoints[0].targetRef.name is a boolean, not a string" },

	/* Pod */
	{ K8S_POD, POD(",'spec':5"), "default/p: spec is a number, not an object" },
	{ K8S_POD, POD(",'spec':{'hostNetwork':'yes'}"), "spec.hostNetwork is a string, not a boolean" },
	{ K8S_POD, POD(",'spec':{'nodeName':['n']}"), "spec.nodeName is an array, not a string" },
	{ K8S_POD, POD(",'status':{'phase':5}"), "status.phase is a number, not a string" },
	{ K8S_POD, POD(",'status':{'phase':'Run ning'}"), "status.phase \"Run ning\" is not a phase" },
	{ K8S_POD, POD(",'status':{'podIPs':[{}]}"), "default/p: status.podIPs[0].ip is missing" },
	{ K8S_POD, POD(",'status':{'podIPs':['198.18.1.1']}"), "status.podIPs[0] is a string, not an object" },
	{ K8S_POD, POD(",'status':{'podIPs':[{'ip':'x'}]}"), "status.podIPs[0].ip \"x\" is not an IP address" },
	{ K8S_POD, POD(",'status':{'podIPs':{}}"), "status.podIPs is an object, not an array" },
	{ K8S_POD, POD(",'status':{'podIP':'300.1.1.1'}"), "status.podIP \"300.1.1.1\" is not an IP address" },

	/* Node */
	{ K8S_NODE, NODE(",'status':{'addresses':[{'type':'InternalIP'}]}"), "n1: status.addresses[0].address is missing" },
	{ K8S_NODE, NODE(",'status':{'addresses':[{'address':'198.18.0.2'}]}"), "n1: status.addresses[0].type is missing" },
	{ K8S_NODE, NODE(",'status':{'addresses':[{'type':'ExternalIP','address':'bad'}]}"), "n1: status.addresses[0].address \"bad\" is not an IP address" },
	{ K8S_NODE, NODE(",'status':{'addresses':[{'type':'Hostname','address':5}]}"), "status.addresses[0].address is a number, not a string" },
	{ K8S_NODE, NODE(",'status':{'addresses':[7]}"), "status.addresses[0] is a number, not an object" },
	{ K8S_NODE, NODE(",'status':[]"), "n1: status is an array, not an object" },
	{ K8S_NODE, "{'metadata':{'name':'n1','labels':{'topology.kubernetes.io/zone':5}}}", "n1: metadata.labels[\"topology.kubernetes.io/zone\"] is a number, not a string" },
	{ K8S_NODE, "{'metadata':{'name':'n1','labels':{'topology.kubernetes.io/zone':'-a'}}}", "is not a label value" },
};

static void test_malformed(void **state)
{
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
		refused(malformed[i].kind, malformed[i].text, malformed[i].want);
}

/* The exact shape of an error, as the agent will log it. */
static void test_error_exact(void **state)
{
	json_t *v = J(SVCP("{'name':'x','port':81,'protocol':'ICMP'}"));

	refused_v(K8S_SERVICE, v, "default/web: spec.ports[1].protocol \"ICMP\" is not TCP, UDP or SCTP",
		  true, "ICMP");
	json_decref(v);

	/* Hostile text in a value is bounded and made printable in the message. */
	v = J(SVC("'type':'\\u001b[31mxxxxxxxxxxxxxxxxxxxxx\\\"'"));
	refused_v(K8S_SERVICE, v, "default/web: spec.type \"?[31mxxxxxxxxxxxxxxxxxxxxx?\" is not", false,
		  "escape");
	json_decref(v);

	/* A short buffer truncates, never overflows; a zero-length one is left alone. */
	{
		char err[8] = "xxxxxxx";

		v = J(SVC("'type':'Foo'"));
		assert_null(k8s_decode(K8S_SERVICE, v, err, sizeof(err)));
		assert_string_equal(err, "default");
		assert_null(k8s_decode(K8S_SERVICE, v, err, 0));
		assert_string_equal(err, "default");
		json_decref(v);
	}
	/* No object at all. */
	{
		char err[64];

		assert_null(k8s_decode(K8S_POD, NULL, err, sizeof(err)));
		assert_string_equal(err, "Pod is missing, not an object");
		assert_null(k8s_decode(K8S_NKINDS, NULL, err, sizeof(err)));
		assert_non_null(strstr(err, "unknown kind"));
	}
}

/* ------------------------------------------------------------- limits */

static json_t *svc_named(const char *ns, const char *name)
{
	return json_pack("{s:{s:s,s:s},s:{}}", "metadata", "name", name, "namespace", ns, "spec");
}

static void test_limits_names(void **state)
{
	char name[K8S_NAME_MAX + 2], ns[K8S_NAMESPACE_MAX + 2], err[512];
	struct k8s_object *o;
	json_t *v;

	/* 253 bytes of dotted labels pass, 254 do not. */
	memset(name, 'a', sizeof(name));
	for (size_t i = 50; i < K8S_NAME_MAX; i += 51)
		name[i] = '.';
	name[K8S_NAME_MAX] = '\0';
	v = svc_named("d", name);
	o = k8s_decode(K8S_SERVICE, v, err, sizeof(err));
	if (!o)
		fail_msg("%s", err);
	assert_int_equal(strlen(o->meta.name), K8S_NAME_MAX);
	k8s_object_free(o);
	json_decref(v);
	name[K8S_NAME_MAX] = 'a';
	name[K8S_NAME_MAX + 1] = '\0';
	v = svc_named("d", name);
	refused_v(K8S_SERVICE, v, "metadata.name is longer than 253 bytes", true, "long name");
	json_decref(v);

	/* A single label may not exceed 63 even inside a subdomain. */
	memset(name, 'a', 64);
	name[64] = '\0';
	v = svc_named("d", name);
	refused_v(K8S_SERVICE, v, "is not a DNS subdomain", false, "long label");
	json_decref(v);

	memset(ns, 'n', sizeof(ns));
	ns[K8S_NAMESPACE_MAX] = '\0';
	v = svc_named(ns, "web");
	o = k8s_decode(K8S_SERVICE, v, err, sizeof(err));
	assert_non_null(o);
	k8s_object_free(o);
	json_decref(v);
	ns[K8S_NAMESPACE_MAX] = 'n';
	ns[K8S_NAMESPACE_MAX + 1] = '\0';
	v = svc_named(ns, "web");
	refused_v(K8S_SERVICE, v, "web: metadata.namespace is longer than 63 bytes", true, "long ns");
	json_decref(v);
}

/* A service with n ports numbered 1..n. */
static json_t *svc_ports(size_t n)
{
	json_t *v = J(SVC("'ports':[]"));
	json_t *ports = json_object_get(json_object_get(v, "spec"), "ports");

	for (size_t i = 0; i < n; i++)
		json_array_append_new(ports, json_pack("{s:I}", "port", (json_int_t)i + 1));
	return v;
}

/* An IPv4 slice with n endpoints of k addresses each. */
static json_t *eps_endpoints(size_t n, size_t k)
{
	json_t *v = J(EPS(",'endpoints':[]"));
	json_t *eps = json_object_get(v, "endpoints");

	for (size_t i = 0; i < n; i++) {
		json_t *addrs = json_array();
		char ip[INET_ADDRSTRLEN];

		for (size_t j = 0; j < k; j++) {
			snprintf(ip, sizeof(ip), "198.18.%zu.%zu", (i * k + j) / 256, (i * k + j) % 256);
			json_array_append_new(addrs, json_string(ip));
		}
		json_array_append_new(eps, json_pack("{s:o}", "addresses", addrs));
	}
	return v;
}

static void test_limits_arrays(void **state)
{
	struct k8s_object *o;
	char err[256];
	json_t *v;

	v = svc_ports(K8S_MAX_PORTS);
	o = k8s_decode(K8S_SERVICE, v, err, sizeof(err));
	assert_non_null(o);
	assert_int_equal(o->svc.n_ports, K8S_MAX_PORTS);
	assert_int_equal(o->svc.ports[K8S_MAX_PORTS - 1].port, K8S_MAX_PORTS);
	k8s_object_free(o);
	json_decref(v);
	v = svc_ports(K8S_MAX_PORTS + 1);
	refused_v(K8S_SERVICE, v, "default/web: spec.ports has 257 entries, more than the limit of 256",
		  true, "ports");
	json_decref(v);

	v = eps_endpoints(K8S_MAX_ENDPOINTS, 1);
	o = k8s_decode(K8S_ENDPOINTSLICE, v, err, sizeof(err));
	assert_non_null(o);
	assert_int_equal(o->eps.n_endpoints, K8S_MAX_ENDPOINTS);
	assert_ip(o->eps.endpoints[999].addrs[0], "198.18.3.231");
	assert_roundtrip(o);
	k8s_object_free(o);
	json_decref(v);
	v = eps_endpoints(K8S_MAX_ENDPOINTS + 1, 1);
	refused_v(K8S_ENDPOINTSLICE, v, "endpoints has 1001 entries, more than the limit of 1000", false,
		  "endpoints");
	json_decref(v);

	v = eps_endpoints(1, K8S_MAX_ADDRS_PER_ENDPOINT);
	o = k8s_decode(K8S_ENDPOINTSLICE, v, err, sizeof(err));
	assert_non_null(o);
	assert_int_equal(o->eps.endpoints[0].n_addrs, K8S_MAX_ADDRS_PER_ENDPOINT);
	k8s_object_free(o);
	json_decref(v);
	v = eps_endpoints(1, K8S_MAX_ADDRS_PER_ENDPOINT + 1);
	refused_v(K8S_ENDPOINTSLICE, v, "endpoints[0].addresses has 101 entries", false, "addrs");
	json_decref(v);

	v = J(SVC("'externalIPs':['1.1.1.1','1.1.1.2','1.1.1.3','1.1.1.4','1.1.1.5','1.1.1.6',"
		  "'1.1.1.7','1.1.1.8','1.1.1.9','1.1.1.10','1.1.1.11','1.1.1.12','1.1.1.13',"
		  "'1.1.1.14','1.1.1.15','1.1.1.16','1.1.1.17']"));
	refused_v(K8S_SERVICE, v, "spec.externalIPs has 17 entries, more than the limit of 16", false,
		  "externalIPs");
	json_decref(v);
}

/* A slice whose one endpoint has n zone hints and n node hints, each of len bytes. */
static json_t *eps_hints(size_t n, size_t len)
{
	json_t *v = J(EP("{'addresses':['198.18.1.1'],'hints':{'forZones':[],'forNodes':[]}}"));
	json_t *h = json_object_get(json_array_get(json_object_get(v, "endpoints"), 0), "hints");
	char name[K8S_NAME_MAX + 2];

	assert_true(len >= 2 && len < sizeof(name));
	for (size_t i = 0; i < n; i++) {
		/* Distinct names of exactly len bytes: "a...a<i>" ending in a digit. */
		memset(name, 'a', len);
		name[len - 1] = (char)('0' + i % 10);
		name[len - 2] = (char)('a' + i / 10);
		name[len] = '\0';
		json_array_append_new(json_object_get(h, "forZones"), json_pack("{s:s}", "name", name));
		json_array_append_new(json_object_get(h, "forNodes"), json_pack("{s:s}", "name", name));
	}
	return v;
}

static void test_hints_limits(void **state)
{
	struct k8s_object *o;
	char err[256];
	json_t *v;

	/* 8 of each, zone names at the label limit (63), node names at 63 too. */
	v = eps_hints(K8S_MAX_HINTS, 63);
	o = k8s_decode(K8S_ENDPOINTSLICE, v, err, sizeof(err));
	if (!o)
		fail_msg("%s", err);
	assert_int_equal(o->eps.endpoints[0].n_zone_hints, K8S_MAX_HINTS);
	assert_int_equal(o->eps.endpoints[0].n_node_hints, K8S_MAX_HINTS);
	assert_int_equal(strlen(o->eps.endpoints[0].zone_hints[7]), 63);
	assert_string_equal(o->eps.endpoints[0].zone_hints[7], o->eps.endpoints[0].node_hints[7]);
	assert_roundtrip(o);
	k8s_object_free(o);
	json_decref(v);

	v = eps_hints(K8S_MAX_HINTS + 1, 8);
	refused_v(K8S_ENDPOINTSLICE, v,
		  "default/web-1: endpoints[0].hints.forZones has 9 entries, more than the limit of 8",
		  true, "9 hints");
	json_decref(v);

	/* A zone name is a label value (63 bytes at most). */
	v = eps_hints(1, 64);
	refused_v(K8S_ENDPOINTSLICE, v, "endpoints[0].hints.forZones[0].name is longer than 63 bytes",
		  false, "long zone hint");
	json_decref(v);

	/* A node name is a DNS subdomain: 253 bytes, labels of 63 at most. */
	v = J(EP("{'addresses':['198.18.1.1'],'hints':{'forNodes':[]}}"));
	{
		json_t *arr = json_object_get(
			json_object_get(json_array_get(json_object_get(v, "endpoints"), 0), "hints"),
			"forNodes");
		char name[K8S_NAME_MAX + 2];

		memset(name, 'n', sizeof(name));
		for (size_t i = 50; i < K8S_NAME_MAX; i += 51)
			name[i] = '.';
		name[K8S_NAME_MAX + 1] = '\0';
		json_array_append_new(arr, json_pack("{s:s}", "name", name));
	}
	refused_v(K8S_ENDPOINTSLICE, v, "endpoints[0].hints.forNodes[0].name is longer than 253 bytes",
		  false, "long node hint");
	json_decref(v);
}

/* Hints are modelled: a change is a change; their strings share the pool. */
static void test_hints_equal_pool(void **state)
{
	static const char text[] =
		"{'metadata':{'name':'web-1','namespace':'default','labels':{'kubernetes.io/service-name':'web'}},"
		" 'addressType':'IPv4','ports':[{'name':'http','port':80}],"
		" 'endpoints':[{'addresses':['198.18.1.1','198.18.1.5'],'nodeName':'node-a','zone':'z1',"
		"               'hints':{'forZones':[{'name':'z1'}],'forNodes':[{'name':'node-a'}]}},"
		"              {'addresses':['198.18.1.2'],'nodeName':'node-b','zone':'z1',"
		"               'hints':{'forZones':[{'name':'z1'},{'name':'z2'}]}},"
		"              {'addresses':['198.18.1.3'],'zone':'z2'}]}";
	static const char *const changes[] = {
		/* another zone, one more zone, a node hint added, none left */
		"{'forZones':[{'name':'z2'}],'forNodes':[{'name':'node-a'}]}",
		"{'forZones':[{'name':'z1'},{'name':'z3'}],'forNodes':[{'name':'node-a'}]}",
		"{'forZones':[{'name':'z1'}],'forNodes':[{'name':'node-a'},{'name':'node-b'}]}",
		"{'forZones':[{'name':'z1'}]}",
		"{}",
	};
	struct k8s_object *a = decode_ok(K8S_ENDPOINTSLICE, text), *b;
	const struct eps_endpoint *ep = a->eps.endpoints;
	const char *pool = a->meta.pool;
	char err[256];

	/* Strings once: the zone and its hint, the node name and its hint. */
	assert_non_null(pool);
	assert_ptr_equal(ep[0].zone_hints[0], ep[0].zone);
	assert_ptr_equal(ep[1].zone_hints[0], ep[0].zone);
	assert_ptr_equal(ep[0].node_hints[0], ep[0].node_name);
	assert_ptr_equal(ep[1].zone_hints[1], ep[2].zone);
	/* Addresses first, then the hint arrays, pointer-aligned, inside the block. */
	assert_ptr_equal(ep[0].addrs, (const void *)pool);
	assert_int_equal((uintptr_t)ep[0].zone_hints % sizeof(char *), 0);
	assert_ptr_equal(ep[0].zone_hints, (const void *)(pool + 4 * sizeof(struct in_addr)));
	assert_ptr_equal(ep[0].node_hints, ep[0].zone_hints + 1);
	assert_ptr_equal(ep[1].zone_hints, ep[0].node_hints + 1);
	assert_null(ep[2].zone_hints);
	assert_roundtrip(a);

	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		json_t *v = J(text);

		json_object_set_new(json_array_get(json_object_get(v, "endpoints"), 0), "hints",
				    J(changes[i]));
		b = k8s_decode(K8S_ENDPOINTSLICE, v, err, sizeof(err));
		if (!b)
			fail_msg("%s: %s", changes[i], err);
		if (k8s_object_equal(a, b) || k8s_object_equal(b, a))
			fail_msg("%s: equal to the original", changes[i]);
		assert_roundtrip(b);
		k8s_object_free(b);
		json_decref(v);
	}
	/* An empty list equals an absent one. */
	{
		json_t *v = J(text);

		json_object_set_new(json_array_get(json_object_get(v, "endpoints"), 2), "hints",
				    J("{'forZones':[],'forNodes':null}"));
		b = k8s_decode(K8S_ENDPOINTSLICE, v, err, sizeof(err));
		assert_non_null(b);
		assert_true(k8s_object_equal(a, b));
		k8s_object_free(b);
		json_decref(v);
	}
	k8s_object_free(a);
}

/* A hand-built endpoint with heap hints (no pool) frees cleanly. */
static void test_hints_free_unpooled(void **state)
{
	struct k8s_object *o = calloc(1, sizeof(*o));
	struct eps_endpoint *e;

	assert_non_null(o);
	o->kind = K8S_ENDPOINTSLICE;
	o->eps.endpoints = calloc(1, sizeof(*o->eps.endpoints));
	assert_non_null(o->eps.endpoints);
	o->eps.n_endpoints = 1;
	e = &o->eps.endpoints[0];
	e->zone_hints = calloc(2, sizeof(char *));
	e->node_hints = calloc(1, sizeof(char *));
	assert_true(e->zone_hints && e->node_hints);
	e->zone_hints[0] = strdup("z1");
	e->n_zone_hints = 1; /* the second slot was never filled, as decode leaves it */
	e->node_hints[0] = strdup("node-a");
	e->n_node_hints = 1;
	k8s_object_free(o); /* the leak checker has the last word */
}

/* --------------------------------------------------- equal, key, names */

static void test_equal(void **state)
{
	struct k8s_object *a = decode_ok(K8S_ENDPOINTSLICE, eps_web);
	struct k8s_object *b;
	json_t *v = J(eps_web);
	json_t *ep;
	char err[256];

	/* A new resourceVersion and unmodelled changes: equal. */
	json_object_set_new(json_object_get(v, "metadata"), "resourceVersion", json_string("100"));
	json_object_set_new(json_object_get(v, "metadata"), "annotations", json_pack("{s:s}", "a", "b"));
	b = k8s_decode(K8S_ENDPOINTSLICE, v, err, sizeof(err));
	assert_non_null(b);
	assert_true(k8s_object_equal(a, b));
	k8s_object_free(b);

	/* One endpoint starts terminating: not equal. */
	ep = json_array_get(json_object_get(v, "endpoints"), 1);
	json_object_set_new(json_object_get(ep, "conditions"), "terminating", json_true());
	b = k8s_decode(K8S_ENDPOINTSLICE, v, err, sizeof(err));
	assert_non_null(b);
	assert_false(k8s_object_equal(a, b));
	k8s_object_free(b);
	json_decref(v);

	assert_true(k8s_object_equal(NULL, NULL));
	assert_false(k8s_object_equal(a, NULL));
	b = decode_ok(K8S_SERVICE, svc_web);
	assert_false(k8s_object_equal(a, b));
	assert_true(k8s_object_equal(b, b));
	k8s_object_free(b);
	k8s_object_free(a);
}

static void test_names_and_free(void **state)
{
	static const char *const kinds[] = { "Service", "EndpointSlice", "Pod", "Node" };

	for (int i = 0; i < K8S_NKINDS; i++) {
		assert_string_equal(k8s_kind_name(i), kinds[i]);
		assert_int_equal(k8s_kind_from_name(kinds[i]), i);
	}
	assert_int_equal(k8s_kind_from_name("Endpoints"), -1);
	assert_int_equal(k8s_kind_from_name("service"), -1);
	assert_int_equal(k8s_kind_from_name(NULL), -1);
	assert_string_equal(k8s_kind_name(K8S_NKINDS), "?");
	assert_string_equal(l4_proto_name(L4_TCP), "TCP");
	assert_string_equal(l4_proto_name(L4_UDP), "UDP");
	assert_string_equal(l4_proto_name(L4_SCTP), "SCTP");
	k8s_object_free(NULL);
	assert_null(k8s_object_key(NULL));
	assert_null(k8s_service_to_json(NULL));
	assert_null(k8s_endpointslice_to_json(NULL));
}

/* Decoded strings live in one pool, equal ones stored once. */
static void test_pool(void **state)
{
	struct k8s_object *o = decode_ok(
		K8S_ENDPOINTSLICE,
		"{'metadata':{'name':'web-1','namespace':'default','labels':{'kubernetes.io/service-name':'web'}},"
		" 'addressType':'IPv4','ports':[{'name':'http','port':80}],"
		" 'endpoints':[{'addresses':['198.18.1.1'],'nodeName':'node-a','zone':'z1',"
		"               'targetRef':{'kind':'Pod','name':'web-a'}},"
		"              {'addresses':['198.18.1.2','198.18.1.3'],'nodeName':'node-a','zone':'z1',"
		"               'targetRef':{'kind':'Pod','name':'web-b'}},"
		"              {'addresses':['198.18.1.4'],'nodeName':'node-b','zone':'z1'}]}");
	const struct eps_endpoint *ep = o->eps.endpoints;
	const char *pool = o->meta.pool;

	assert_non_null(pool);
	assert_ptr_equal(ep[0].node_name, ep[1].node_name);
	assert_ptr_equal(ep[0].zone, ep[2].zone);
	assert_ptr_not_equal(ep[0].node_name, ep[2].node_name);
	assert_string_equal(ep[2].node_name, "node-b");
	assert_string_equal(ep[1].target_pod, "web-b");
	/* Address arrays are in the pool too, in order and aligned. */
	assert_ptr_equal(ep[0].addrs, (const void *)pool);
	assert_ptr_equal(ep[1].addrs, ep[0].addrs + 1);
	assert_ip(ep[1].addrs[1], "198.18.1.3");
	assert_ip(ep[2].addrs[0], "198.18.1.4");
	assert_string_equal(o->meta.ns, "default");
	assert_string_equal(o->eps.service, "web");
	assert_roundtrip(o);
	k8s_object_free(o);
}

/* A partially built object (as decode leaves it on failure) frees cleanly. */
static void test_free_partial(void **state)
{
	struct k8s_object *o = calloc(1, sizeof(*o));

	assert_non_null(o);
	o->kind = K8S_ENDPOINTSLICE;
	o->eps.meta.name = strdup("x");
	o->eps.endpoints = calloc(3, sizeof(*o->eps.endpoints));
	o->eps.n_endpoints = 2;
	o->eps.endpoints[0].addrs = calloc(1, sizeof(struct in_addr));
	o->eps.endpoints[0].n_addrs = 1;
	o->eps.endpoints[1].node_name = strdup("n");
	k8s_object_free(o); /* the leak checker has the last word */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_service_cluster_ip),
		cmocka_unit_test(test_service_minimal_defaults),
		cmocka_unit_test(test_service_node_port),
		cmocka_unit_test(test_service_load_balancer),
		cmocka_unit_test(test_service_external_name),
		cmocka_unit_test(test_service_headless),
		cmocka_unit_test(test_service_dual_stack),
		cmocka_unit_test(test_service_affinity),
		cmocka_unit_test(test_endpointslice),
		cmocka_unit_test(test_endpointslice_all_ports_and_orphans),
		cmocka_unit_test(test_endpointslice_non_ipv4),
		cmocka_unit_test(test_pod),
		cmocka_unit_test(test_node),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_error_exact),
		cmocka_unit_test(test_limits_names),
		cmocka_unit_test(test_limits_arrays),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_names_and_free),
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_free_partial),
		cmocka_unit_test(test_hints_limits),
		cmocka_unit_test(test_hints_equal_pool),
		cmocka_unit_test(test_hints_free_unpooled),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
