/* Address allow-lists for the admin protocol: "CIDR,CIDR,...", "any". */
#ifndef COG_ADMIN_ACL_H
#define COG_ADMIN_ACL_H

#include <stddef.h>
#include <stdint.h>

typedef struct adm_net {
  int family;            /* 4 or 6 */
  uint8_t addr[16];
  int prefix;            /* bits */
} adm_net_t;

typedef struct adm_acl {
  adm_net_t *nets;
  size_t n;
  int any;
} adm_acl_t;

/* spec NULL or "" allows nobody; "any"/"all" allows everybody.
 * Returns 0, or -1 with a message in err. */
int adm_acl_parse(adm_acl_t *acl, const char *spec, char *err, size_t errlen);
int adm_acl_match(const adm_acl_t *acl, const char *address);
void adm_acl_free(adm_acl_t *acl);

#endif
