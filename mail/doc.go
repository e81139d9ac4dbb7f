// Package mail composes and delivers sealed e-mail messages.
//
// Compose builds an RFC 5322 message whose body is an RFC 3156 PGP/MIME
// multipart/encrypted entity: the readable text travels only inside the
// OpenPGP message produced by the caller's encrypt callback, so this package
// never touches keys. Attachments travel inside it too (a multipart/mixed
// entity of the text and the files). The outer headers (Subject above all) are not
// protected and must stay generic.
//
// Delivery goes through a Sender: SMTP (a go-mail client with STARTTLS
// mandatory by default) or Spool (one .eml file per message in a directory,
// used when no SMTP server is configured). Temporary tells a failure worth
// retrying (network errors, timeouts, 4xx replies) from a permanent one (5xx
// replies, invalid input).
package mail
