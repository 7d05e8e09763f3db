/* Admin allow-lists, see acl.h. */
#include "acl.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int parse_addr(const char *s, adm_net_t *n)
{
  if (inet_pton(AF_INET, s, n->addr) == 1) {
    n->family = 4;
    return 0;
  }
  if (inet_pton(AF_INET6, s, n->addr) == 1) {
    n->family = 6;
    return 0;
  }
  return -1;
}

int adm_acl_parse(adm_acl_t *acl, const char *spec, char *err, size_t errlen)
{
  memset(acl, 0, sizeof(*acl));
  if (spec == NULL || *spec == '\0')
    return 0;
  char *copy = strdup(spec), *save = NULL;
  if (copy == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
    if (!strcasecmp(t, "any") || !strcasecmp(t, "all")) {
      acl->any = 1;
      continue;
    }
    adm_net_t n;
    memset(&n, 0, sizeof(n));
    char *slash = strchr(t, '/');
    if (slash)
      *slash = '\0';
    if (parse_addr(t, &n) != 0) {
      snprintf(err, errlen, "'%s' is not an IPv4 or IPv6 address", t);
      free(copy);
      adm_acl_free(acl);
      return -1;
    }
    int max = n.family == 4 ? 32 : 128;
    n.prefix = max;
    if (slash) {
      char *end;
      long p = strtol(slash + 1, &end, 10);
      if (*end || p < 0 || p > max || slash[1] == '\0') {
        snprintf(err, errlen, "bad prefix length '/%s' for %s", slash + 1, t);
        free(copy);
        adm_acl_free(acl);
        return -1;
      }
      n.prefix = (int)p;
    }
    adm_net_t *nets = realloc(acl->nets, (acl->n + 1) * sizeof(*nets));
    if (nets == NULL) {
      snprintf(err, errlen, "out of memory");
      free(copy);
      adm_acl_free(acl);
      return -1;
    }
    acl->nets = nets;
    acl->nets[acl->n++] = n;
  }
  free(copy);
  return 0;
}

static int in_net(const adm_net_t *net, const adm_net_t *a)
{
  if (net->family != a->family)
    return 0;
  int bits = net->prefix;
  int i = 0;
  for (; bits >= 8; bits -= 8, i++)
    if (net->addr[i] != a->addr[i])
      return 0;
  if (bits) {
    uint8_t mask = (uint8_t)(0xff << (8 - bits));
    if ((net->addr[i] & mask) != (a->addr[i] & mask))
      return 0;
  }
  return 1;
}

int adm_acl_match(const adm_acl_t *acl, const char *address)
{
  if (acl->any)
    return 1;
  adm_net_t a;
  memset(&a, 0, sizeof(a));
  if (address == NULL || parse_addr(address, &a) != 0)
    return 0;
  for (size_t i = 0; i < acl->n; i++)
    if (in_net(&acl->nets[i], &a))
      return 1;
  return 0;
}

void adm_acl_free(adm_acl_t *acl)
{
  free(acl->nets);
  acl->nets = NULL;
  acl->n = 0;
  acl->any = 0;
}
