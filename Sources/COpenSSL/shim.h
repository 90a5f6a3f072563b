// OpenSSL's libcrypto (libssl-dev, which libpq-dev brings): only its SHA-256 digest is used.
#include <openssl/evp.h>
