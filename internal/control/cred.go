package control

import (
	"fmt"
	"net"
	"os/user"
	"slices"
	"strconv"
	"syscall"
)

// Cred is the identity of the process at the other end of a connection,
// as the kernel tells it (SO_PEERCRED): the client cannot choose it.
type Cred struct {
	PID int32
	UID uint32
	GID uint32
}

// PeerCred reads the peer credentials of a Unix socket connection.
func PeerCred(c *net.UnixConn) (Cred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Cred{}, err
	}
	var uc *syscall.Ucred
	var uerr error
	if err := raw.Control(func(fd uintptr) {
		uc, uerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return Cred{}, err
	}
	if uerr != nil {
		return Cred{}, fmt.Errorf("SO_PEERCRED: %w", uerr)
	}
	return Cred{PID: uc.Pid, UID: uc.Uid, GID: uc.Gid}, nil
}

// Policy says who may use the socket: root, the daemon's own user, and
// the members of its group (primary or supplementary).
type Policy struct {
	DaemonUID uint32
	GID       uint32
	Group     string // the group's name, for the refusal
	// GroupsOf lists the groups of a user (default: UserGroups).
	GroupsOf func(uid uint32) ([]uint32, error)
}

// Allow refuses a caller that is neither root, nor the daemon's user, nor
// a member of the group.
func (p Policy) Allow(c Cred) error {
	if c.UID == 0 || c.UID == p.DaemonUID || c.GID == p.GID {
		return nil
	}
	groupsOf := p.GroupsOf
	if groupsOf == nil {
		groupsOf = UserGroups
	}
	gs, err := groupsOf(c.UID)
	if err == nil && slices.Contains(gs, p.GID) {
		return nil
	}
	return fmt.Errorf("l'utente %s non fa parte del gruppo %s, che può usare il socket di controllo del daemon", UserName(c.UID), p.Group)
}

// UserGroups lists the groups of the user uid, from the system's user
// database.
func UserGroups(uid uint32) ([]uint32, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return nil, err
	}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, err
	}
	var gs []uint32
	for _, s := range ids {
		if g, err := strconv.ParseUint(s, 10, 32); err == nil {
			gs = append(gs, uint32(g))
		}
	}
	return gs, nil
}

// UserName is the name of the user uid, or "uid<N>" when the system does
// not know it.
func UserName(uid uint32) string {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid" + strconv.FormatUint(uint64(uid), 10)
}
