/* TLS: the one place that reads the --ssl* options and files and owns the
 * server's SSL_CTX.  Protocol plugins borrow the context through
 * host->tls_context() for each connection they accept; SSL_new() takes its
 * own reference, so a context replaced on SIGHUP is freed here while the
 * connections made with it live on. */
#include "cogd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef HAVE_OPENSSL
#include <openssl/err.h>
#include <openssl/ssl.h>

static SSL_CTX *ctx;        /* NULL: TLS is off */
static int at_startup = 1;  /* failures go to stderr before the log is open */

static void COG_PRINTF(1, 2) fail(const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (at_startup)
    fprintf(stderr, "cogd: %s\n", msg);
  else
    cog_log(COG_LOG_ERROR, "SIGHUP: %s: the TLS settings in use are kept", msg);
}

/* The most specific reason OpenSSL queued, then its queue emptied. */
static const char *ssl_reason(char *buf, size_t len)
{
  unsigned long e, last = 0;
  while ((e = ERR_get_error()) != 0)
    last = e;
  if (last == 0)
    snprintf(buf, len, "unknown OpenSSL error");
  else
    ERR_error_string_n(last, buf, len);
  return buf;
}

/* A clear errno message (missing file, no permission) before OpenSSL's. */
static int readable(const char *opt, const char *path)
{
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    fail("--%s %s: %s", opt, path, strerror(errno));
    return 0;
  }
  fclose(f);
  return 1;
}

/* An encrypted key would make OpenSSL prompt on the terminal: refuse. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)u;
  return -1;
}

static SSL_CTX *build(void)
{
  const char *cert = cog_opts_get(cog_options, "ssl-certificate");
  const char *key = cog_opts_get(cog_options, "ssl-key");
  const char *ca = cog_opts_get(cog_options, "ssl-ca-file");
  const char *vc = cog_opts_get(cog_options, "ssl-verify-client");
  int verify = vc && strcmp(vc, "0") != 0;
  char why[256];

  if (cert == NULL || *cert == '\0') {
    fail("--ssl needs --ssl-certificate (and --ssl-key unless the key is in the same file)");
    return NULL;
  }
  if (key == NULL || *key == '\0')
    key = cert;
  if (verify && (ca == NULL || *ca == '\0')) {
    fail("--ssl-verify-client needs --ssl-ca-file (the CA that signs client certificates)");
    return NULL;
  }
  if (!readable("ssl-certificate", cert) || !readable("ssl-key", key) ||
      (ca && *ca && !readable("ssl-ca-file", ca)))
    return NULL;

  ERR_clear_error();
  SSL_CTX *c = SSL_CTX_new(TLS_server_method());
  if (c == NULL) {
    fail("cannot create a TLS context: %s", ssl_reason(why, sizeof(why)));
    return NULL;
  }
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                             SSL_OP_NO_RENEGOTIATION);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
  /* OpenSSL 3 reports a peer closing without close_notify as an error,
   * which libevent 2.1 cannot tell from a real one.  Gearman packets and
   * HTTP messages carry their own lengths, so such an EOF is only an EOF. */
  SSL_CTX_set_options(c, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
  /* Idle workers are the usual connection: give their buffers back. */
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_default_passwd_cb(c, no_passphrase);
  /* Session resumption with client certificates needs an id context. */
  static const unsigned char sid[] = "cogd";
  SSL_CTX_set_session_id_context(c, sid, sizeof(sid) - 1);

  if (SSL_CTX_use_certificate_chain_file(c, cert) != 1) {
    fail("--ssl-certificate %s: cannot load the certificate: %s", cert,
         ssl_reason(why, sizeof(why)));
    goto fail;
  }
  if (SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1) {
    fail("--ssl-key %s: cannot use the private key (PEM, unencrypted, matching the "
         "certificate): %s", key, ssl_reason(why, sizeof(why)));
    goto fail;
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    fail("--ssl-key %s does not match the certificate in %s: %s", key, cert,
         ssl_reason(why, sizeof(why)));
    goto fail;
  }
  if (ca && *ca) {
    if (SSL_CTX_load_verify_locations(c, ca, NULL) != 1) {
      fail("--ssl-ca-file %s: cannot load the CA certificates: %s", ca,
           ssl_reason(why, sizeof(why)));
      goto fail;
    }
    if (verify) {
      STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
      if (names == NULL) {
        fail("--ssl-ca-file %s: no CA names in it: %s", ca, ssl_reason(why, sizeof(why)));
        goto fail;
      }
      SSL_CTX_set_client_CA_list(c, names);
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
  }
  struct stat st;
  if (stat(key, &st) == 0 && (st.st_mode & S_IROTH))
    cog_log(COG_LOG_WARNING, "TLS private key %s is readable by every user: chmod 600 it",
            key);
  return c;
fail:
  SSL_CTX_free(c);
  return NULL;
}

int cog_tls_init(void)
{
  const char *on = cog_opts_get(cog_options, "ssl");
  if (on == NULL || strcmp(on, "0") == 0)
    return COG_OK;
  at_startup = 1;
  ctx = build();
  at_startup = 0;
  return ctx ? COG_OK : COG_EINVAL;
}

int cog_tls_reload(void)
{
  if (ctx == NULL)
    return COG_OK;
  SSL_CTX *fresh = build();
  if (fresh == NULL)
    return COG_ERROR;
  SSL_CTX_free(ctx);
  ctx = fresh;
  cog_log(COG_LOG_NOTICE, "SIGHUP: TLS certificate, key and CA files read again");
  return COG_OK;
}

void *cog_tls_context(void) { return ctx; }

void cog_tls_free(void)
{
  SSL_CTX_free(ctx);
  ctx = NULL;
}

#else /* !HAVE_OPENSSL */

int cog_tls_init(void)
{
  const char *on = cog_opts_get(cog_options, "ssl");
  if (on == NULL || strcmp(on, "0") == 0)
    return COG_OK;
  fprintf(stderr, "cogd: --ssl: this cogd was built without TLS support (configure found no "
          "OpenSSL or libevent_openssl; rebuild with --with-openssl)\n");
  return COG_EUNSUPPORTED;
}

int cog_tls_reload(void) { return COG_OK; }
void *cog_tls_context(void) { return NULL; }
void cog_tls_free(void) {}

#endif
